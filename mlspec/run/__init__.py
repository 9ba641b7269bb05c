"""mlspec run: execute steps in DAG order, keyed and recorded in mlspec.lock."""

"""Production monitoring: reference profiles, live samples, drift metrics, `mlspec monitor`."""

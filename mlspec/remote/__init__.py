"""The remote store of step runs: an OCI registry (`oci://host/repo`) or a shared directory
(`file:///dir`), for `mlspec push` / `mlspec pull` and the pull before `mlspec run` executes."""

"""GitOps: baselines from git, gates, metrics diff, report, release, lineage."""

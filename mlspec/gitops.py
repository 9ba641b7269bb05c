"""GitOps: baselines from git, metrics against the base, the PR report, release tags, lineage.

The api calls the functions here; the work lives in small modules beside this one:
gitrefs (base detection, the lock at a ref), metricsdiff (values, deltas, gate verdicts),
report (the PR markdown), release (tags and the model list), lineage (where a model came from,
and the model card).
"""

from __future__ import annotations

from mlspec.gitrefs import find_base_ref, lock_at

__all__ = ["find_base_ref", "lock_at"]

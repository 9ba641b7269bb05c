"""GitOps: baselines from git, metrics against the base, the PR report, release tags, lineage.

The api calls the functions here; the work lives in small modules beside this one:
gitrefs (base detection, the lock at a ref), metricsdiff (values, deltas, gate verdicts),
report (the PR markdown), release (tags and the model list), lineage (where a model came from,
and the model card).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from mlspec.errors import Diagnostic, MlspecError, Outcome
from mlspec.gitrefs import LOCK_NAME, find_base_ref, lock_at

if TYPE_CHECKING:
    from mlspec.lock import Lock
    from mlspec.metricsdiff import Comparison
    from mlspec.spec.loader import LoadedSpec

__all__ = ["find_base_ref", "lineage", "lock_at", "metrics_outcome", "models", "release",
           "report_outcome"]


def current_lock(loaded: LoadedSpec) -> Lock:
    """The working tree's lock; a clear error when `mlspec run` has not written one."""
    from mlspec.lock import read_lock

    lock = read_lock(loaded.root)
    if lock is None:
        raise MlspecError([Diagnostic(LOCK_NAME, 0, 0, f"no {LOCK_NAME} beside {loaded.display}",
                                      "lock.missing", "run `mlspec run` first, then commit "
                                      f"{LOCK_NAME}")])
    return lock


def comparison(loaded: LoadedSpec, ref: str | None, strict: bool = True) -> Comparison:
    """The working tree's metrics against the lock at `ref` (None or 'auto': found here).

    strict=False turns a base that cannot be found into a note instead of an error.
    """
    from mlspec.gitrefs import open_repo, resolve
    from mlspec.metricsdiff import compare

    lock = current_lock(loaded)
    try:
        base = find_base_ref(loaded.root, ref, loaded.spec.ci.default_branch)
    except MlspecError as err:
        if strict:
            raise
        return compare(loaded, lock, None, note=err.diagnostics[0].message)
    if base is None:
        return compare(loaded, lock, None, note="no earlier commit to compare with")
    repo = open_repo(loaded.root)
    assert repo is not None
    return compare(loaded, lock, lock_at(loaded.root, base), base, resolve(repo, base))


def metrics_outcome(loaded: LoadedSpec, diff: str | None, fmt: str) -> Outcome:
    """`mlspec metrics [--diff REF] [--format table|markdown|json]`."""
    from mlspec import metricsdiff

    c = comparison(loaded, diff, strict=diff is not None)
    data = c.to_data()
    if fmt == "json":
        return Outcome(data=data, text=json.dumps(data, indent=2, sort_keys=True))
    if fmt == "markdown":
        return Outcome(data=data, text=metricsdiff.markdown(c))
    return Outcome(data=data, text=metricsdiff.table(c))

"""GitOps: baselines from git, metrics against the base, the PR report, release tags, lineage.

The api calls the functions here; the work lives in small modules beside this one:
gitrefs (base detection, the lock at a ref), metricsdiff (values, deltas, gate verdicts),
report (the PR markdown), release (tags and the model list), lineage (where a model came from,
and the model card).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from mlspec import layout
from mlspec.errors import Diagnostic, MlspecError, Outcome
from mlspec.fsutil import write_atomic
from mlspec.gitops import metricsdiff
from mlspec.gitops.gitrefs import LOCK_NAME, find_base, find_base_ref, lock_at, open_repo, resolve
from mlspec.gitops.history import gather as gather_history
from mlspec.gitops.lineage import lineage_at, lineage_worktree
from mlspec.gitops.metricsdiff import compare
from mlspec.gitops.modelcard import lineage_text
from mlspec.gitops.modelcard import model_card as card
from mlspec.gitops.release import models as list_models
from mlspec.gitops.release import release as do_release
from mlspec.gitops.report import render
from mlspec.run.lock import Lock, read_lock

if TYPE_CHECKING:
    from mlspec.gitops.metricsdiff import Comparison
    from mlspec.gitops.production import Production
    from mlspec.gitops.release import Pinner
    from mlspec.run.lock import Lock
    from mlspec.spec.loader import LoadedSpec

__all__ = ["find_base_ref", "lineage", "lock_at", "metrics_outcome", "models", "release",
           "report_outcome"]


def current_lock(loaded: LoadedSpec) -> Lock:
    """The working tree's lock; a clear error when `mlspec run` has not written one."""

    lock = read_lock(loaded.root)
    if lock is None:
        raise MlspecError([Diagnostic(LOCK_NAME, 0, 0, f"no {LOCK_NAME} beside {loaded.display}",
                                      "lock.missing", "run `mlspec run` first, then commit "
                                      f"{LOCK_NAME}")])
    return lock


def unadopted_records(loaded: LoadedSpec, lock: Lock) -> list[str]:
    """Steps whose latest run (`.mlspec/steps/<step>.lock`, left by every `mlspec run` and
    passed between CI jobs) is not in mlspec.lock: metrics read now would be an older run's.
    `mlspec run` adopts such records into the lock (skipping the steps)."""

    out = []
    for name in loaded.graph.order:
        path = loaded.root / layout.record(name)
        try:
            rec = Lock.parse(path.read_text(encoding="utf-8")).steps.get(name)
        except (OSError, MlspecError):
            continue
        entry = lock.steps.get(name)
        if rec is not None and (entry is None or entry.key != rec.key):
            out.append(name)
    return out


def comparison(loaded: LoadedSpec, ref: str | None, strict: bool = True
               ) -> tuple[Lock, Comparison, Lock | None]:
    """The working tree's lock, its comparison with the lock at `ref` (None or 'auto': the
    base found here), and that base lock.

    strict=False turns a base that cannot be found into a note instead of an error.
    """
    lock = current_lock(loaded)
    pending = unadopted_records(loaded, lock)
    lock, c, base_lock = _compare(loaded, lock, ref, strict)
    c.pending = pending
    return lock, c, base_lock


def _compare(loaded: LoadedSpec, lock: Lock, ref: str | None, strict: bool
             ) -> tuple[Lock, Comparison, Lock | None]:

    try:
        base = find_base(loaded.root, ref, loaded.spec.ci.default_branch)
    except MlspecError as err:
        if strict:
            raise
        return lock, compare(loaded, lock, None, note=err.diagnostics[0].message), None
    if base is None:
        return lock, compare(loaded, lock, None, note="no earlier commit to compare with"), None
    repo = open_repo(loaded.root)
    assert repo is not None
    base_lock = lock_at(loaded.root, base.ref, repo)
    c = compare(loaded, lock, base_lock, base.ref, resolve(repo, base.ref))
    c.how = base.how
    return lock, c, base_lock


def metrics_outcome(loaded: LoadedSpec, diff: str | None, fmt: str) -> Outcome:
    """`mlspec metrics [--diff [REF]] [--format table|markdown|json]`: exit 1 when a gate
    fails (judged as `mlspec run` judges it), so scripts and CI can rely on the code."""

    _, c, _ = comparison(loaded, diff, strict=diff is not None)
    data = c.to_data()
    warn = f"warning: {metricsdiff.pending_text(c)}\n" if c.pending else ""
    failed = c.failed_gates
    code = 1 if failed else 0
    if failed:
        warn += "".join(f"gate failed: {g.gate}" + (f" — {g.note}" if g.note else "") + "\n"
                        for g in failed)
    if fmt == "json":
        text = json.dumps(data, indent=2, sort_keys=True)
    elif fmt == "markdown":
        text = metricsdiff.markdown(c)
    else:
        text = metricsdiff.table(c)
    return Outcome(code=code, data=data, text=text, stderr=warn)


def report_outcome(loaded: LoadedSpec, base: str | None, output: Path | None,
                   production: Production | None = None) -> Outcome:
    """`mlspec report [--base REF] [-o FILE]`: the PR comment / job summary markdown
    (`production`: the monitor runs api read from the remote, when the spec has a monitor)."""

    lock, c, base_lock = comparison(loaded, base, strict=base is not None)
    text = render(loaded, c, lock, base_lock, lineage_worktree(loaded, lock),
                  gather_history(loaded.root, loaded.spec, lock), production)
    if output is None:
        return Outcome(text=text, data=c.to_data())

    output.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(output, text)
    return Outcome(stderr=f"wrote {output}\n", data=c.to_data())


def lineage(loaded: LoadedSpec, ref: str, model_card: bool = False) -> Outcome:
    """`mlspec lineage REF [--json] [--model-card]`: where a tag's or commit's model came from."""

    lin = lineage_at(loaded, ref)
    if lin.pins_error:  # a tag message whose pinned runs are refused: hostile input
        return Outcome(code=2, diagnostics=lin.pins_error)
    if model_card:
        version = None
        if lin.tag and lin.tag["name"].startswith(loaded.spec.ci.tag_prefix):
            version = lin.tag["name"][len(loaded.spec.ci.tag_prefix):]
        notes = lin.tag.get("notes") if lin.tag else None
        return Outcome(text=card(lin, version, notes), data=lin.to_data())
    return Outcome(text=lineage_text(lin), data=lin.to_data())


def release(loaded: LoadedSpec, version: str, message: str | None = None,
            push: bool = False, pin: Pinner | None = None) -> Outcome:
    """`mlspec release VERSION`: check, (pin the runs,) then tag the model's commit with its
    model card."""

    return do_release(loaded, version, message=message, push=push, pin=pin)


def models(loaded: LoadedSpec) -> Outcome:
    """`mlspec models`: the promoted versions, newest first."""

    return list_models(loaded)

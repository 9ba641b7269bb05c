"""One `mlspec run` session: decide per step to skip or run, run it, check it, record it.

The lock is rewritten (atomically) after every successful step, so an interrupted or failed
run leaves every finished step recorded and the failed step's entry as it was. Each run also
leaves `.mlspec/steps/<step>.lock` (that step's record alone): CI jobs pass it along with the
step's outs as an artifact, so a downstream job recognises restored outs as fresh.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlspec import layout
from mlspec.fsutil import write_atomic
from mlspec.run import checks as data_checks
from mlspec.run.execute import builtin_argv, run_process
from mlspec.run.hashing import Hasher
from mlspec.run.lock import Lock, Scalar, StepLock, write_lock
from mlspec.run.progress import Progress
from mlspec.run.stepkey import StepState, missing_deps, outs_match, stale_reasons, step_state

if TYPE_CHECKING:
    from mlspec.spec.loader import LoadedSpec

RECORDS = Path(layout.RECORDS)


class StepFailed(Exception):
    """A step's process failed, an out is missing, its metrics are unreadable or a check failed."""

    def __init__(self, step: str, message: str, detail: str = ""):
        self.step, self.message, self.detail = step, message, detail
        super().__init__(f"step '{step}' failed: {message}")


@dataclass
class VerifyDiff:
    step: str
    what: str
    locked: str
    rerun: str


@dataclass
class Session:
    loaded: LoadedSpec
    lock: Lock
    hasher: Hasher
    env: dict[str, str]
    progress: Progress
    overrides: dict[str, dict[str, Scalar]] = field(default_factory=dict)
    force: bool = False  # rerun every step
    force_steps: set[str] = field(default_factory=set)  # rerun these (`run STEP --force`)
    verify: bool = False
    record: bool = True  # False while running sweep variants
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    diffs: list[VerifyDiff] = field(default_factory=list)
    results: dict[str, StepLock] = field(default_factory=dict)  # this session's outcomes

    @property
    def root(self) -> Path:
        return Path(self.loaded.root)

    def params_for(self, name: str) -> dict[str, Scalar]:
        step = self.loaded.graph.steps[name]
        return {**step.params, **self.overrides.get(name, {})}

    def state(self, name: str) -> StepState:
        step = self.loaded.graph.steps[name]
        return step_state(name, step, self.params_for(name), self.env, self.hasher)

    # -- records from CI artifacts ---------------------------------------------------------
    def _record(self, name: str) -> StepLock | None:
        path = self.root / RECORDS / f"{name}.lock"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            return None
        from mlspec.errors import MlspecError

        try:
            return Lock.parse(text, file=str(RECORDS / f"{name}.lock")).steps.get(name)
        except MlspecError:
            return None  # a broken record only costs a rerun

    def fresh_entry(self, st: StepState) -> StepLock | None:
        """The recorded entry (lock, else a CI record) whose key and outs match, if any."""
        entry = self.lock.steps.get(st.name)
        if entry is not None and entry.key == st.key and not outs_match(st, entry, self.hasher):
            return entry
        rec = self._record(st.name)
        if rec is not None and rec.key == st.key and not outs_match(st, rec, self.hasher):
            return rec
        return None

    # -- the loop --------------------------------------------------------------------------
    def run(self, selection: list[str]) -> None:
        for name in selection:
            st = self.state(name)
            missing_deps(self.loaded, st)
            reasons: list[str] = []
            if self.verify:
                entry = self.lock.steps.get(name)
                reasons = stale_reasons(st, entry, self.lock, self.env, self.hasher)
                if entry is None:
                    self.diffs.append(VerifyDiff(name, "step", "not in the lock", "ran"))
                elif entry.key != st.key:
                    why = "; ".join(r for r in reasons if not r.startswith("out "))
                    self.diffs.append(VerifyDiff(name, "key", "stale lock", why))
            elif not (self.force or name in self.force_steps):
                fresh = self.fresh_entry(st)
                if fresh is not None:
                    self.skipped.append(name)
                    self.progress.skip(name)
                    self.results[name] = fresh
                    if self.record and self.lock.steps.get(name) != fresh:
                        self._store(name, fresh)  # adopt a CI record
                    continue
            self._execute(st)

    def _execute(self, st: StepState) -> None:
        name, step = st.name, st.step
        self.progress.start(name, st.command)
        for out in st.outs:
            (self.root / out.rstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        if step.estimator is not None:
            from mlspec.run.sklearn_step import builtin_config

            argv: list[str] | str = builtin_argv(builtin_config(self.loaded, name, st.params))
        else:
            argv = st.command
        rc = run_process(name, argv, self.root, dict(st.params), self.progress.say)
        if rc != 0:
            self.progress.done(name, False, f"exit code {rc}")
            raise StepFailed(name, f"its command exited with code {rc}")
        outs: dict[str, str] = {}
        for out in st.outs:
            h = self.hasher.hash_path(out)
            if h is None:
                self.progress.done(name, False, f"{out} missing")
                raise StepFailed(name, f"it did not write its out '{out}'")
            outs[out] = h
        metrics = self._metrics(name, step.metrics)
        if step.checks is not None:
            results = data_checks.run_checks(self.root, step.outs, step.checks)
            if not all(r.ok for r in results):
                self.progress.done(name, False, "data checks failed")
                raise StepFailed(name, "data checks failed", data_checks.render(results))
        entry = st.record(outs, metrics)
        self.ran.append(name)
        self.results[name] = entry
        self.progress.done(name, True)
        if self.verify:
            self._compare(name, entry)
        elif self.record:
            self._store(name, entry)

    def _store(self, name: str, entry: StepLock) -> None:
        self.lock.steps[name] = entry
        self.lock.env = dict(self.env)
        write_lock(self.root, self.lock)
        rec = self.root / RECORDS
        rec.mkdir(parents=True, exist_ok=True)
        write_atomic(rec / f"{name}.lock", Lock(env=dict(self.env), steps={name: entry}).dump())

    def _metrics(self, name: str, rel: str | None) -> dict[str, float]:
        if rel is None:
            return {}
        try:
            data = json.loads((self.root / rel).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StepFailed(name, f"it did not write its metrics file '{rel}'") from None
        except (OSError, ValueError) as exc:
            raise StepFailed(name, f"its metrics file '{rel}' is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise StepFailed(name, f"its metrics file '{rel}' is not a JSON object")
        return flatten_metrics(data)

    # -- --verify --------------------------------------------------------------------------
    def _compare(self, name: str, new: StepLock) -> None:
        old = self.lock.steps.get(name)
        if old is None:
            return
        step = self.loaded.graph.steps[name]
        for out in sorted(set(old.outs) | set(new.outs)):
            if out == step.metrics:
                continue  # compared metric by metric, with tolerances
            if old.outs.get(out) != new.outs.get(out):
                self.diffs.append(VerifyDiff(name, f"out {out}", _short(old.outs.get(out)),
                                             _short(new.outs.get(out))))
        tolerances = {}
        design = self.loaded.spec.design
        if design is not None:
            tolerances = {m: float(d.tolerance) for m, d in design.metrics.items()}
        for m in sorted(set(old.metrics) | set(new.metrics)):
            a, b = old.metrics.get(m), new.metrics.get(m)
            tol = tolerances.get(m, 0.0)
            if a is None or b is None or not _close(a, b, tol):
                label = f"metric {m}" + (f" (tolerance {tol:g})" if tol else "")
                self.diffs.append(VerifyDiff(name, label, _num(a), _num(b)))


def _close(a: float, b: float, tol: float) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    return abs(a - b) <= tol + 1e-12


def _num(v: float | None) -> str:
    return "missing" if v is None else repr(v)


def _short(h: str | None) -> str:
    return "missing" if h is None else h[:19] + "…"


def flatten_metrics(data: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numbers from a metrics JSON object; nested objects become dotted names."""
    out: dict[str, float] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, bool):
            continue
        if isinstance(v, int | float):
            out[key] = v
        elif isinstance(v, dict):
            out.update(flatten_metrics(v, key + "."))
    return out

"""One `mlspec run` session: decide per step to skip or run, run it, check it, record it.

The lock is rewritten (atomically) after every successful step, so an interrupted or failed
run leaves every finished step recorded and the failed step's entry as it was. Each run also
leaves `.mlspec/steps/<step>.lock` (that step's record alone): CI jobs pass it along with the
step's outs as an artifact, so a downstream job recognises restored outs as fresh.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlspec import layout
from mlspec.errors import Diagnostic, MlspecError
from mlspec.fsutil import write_atomic
from mlspec.run import checks as data_checks
from mlspec.run.cache import Cache, RestoreFailed
from mlspec.run.execute import Spawned, StepTimedOut, builtin_argv, run_process
from mlspec.run.hashing import Hasher, NotRegularFile, tree_hash
from mlspec.run.lock import Lock, Scalar, StepLock, write_lock
from mlspec.run.metricsfile import MetricsError, flatten_metrics, read_metrics
from mlspec.run.progress import Progress
from mlspec.run.sklearn_step import builtin_config
from mlspec.run.stepkey import StepState, missing_deps, outs_match, stale_reasons, step_state

if TYPE_CHECKING:
    from mlspec.spec.loader import LoadedSpec

RECORDS = Path(layout.RECORDS)
__all__ = ["Session", "StepFailed", "VerifyDiff", "flatten_metrics"]


class StepFailed(Exception):
    """A step's process failed, an out is missing, its metrics are unreadable or a check failed."""

    def __init__(self, step: str, message: str, detail: str = "",
                 diagnostics: list[Diagnostic] | None = None):
        self.step, self.message, self.detail = step, message, detail
        self.diagnostics = diagnostics or []
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
    verify_only: set[str] = field(default_factory=set)  # `--verify STEP`: rerun only these
    restore: bool = True  # restore a stale step from the local cache (not with --force)
    record: bool = True  # False while running sweep variants
    on_spawn: Spawned | None = None  # told each step's session (run lock record)
    ran: list[str] = field(default_factory=list)  # steps run and recorded (each once)
    skipped: list[str] = field(default_factory=list)  # steps up to date (each once)
    restored: list[str] = field(default_factory=list)  # steps restored from the cache
    variant_runs: int = 0  # step runs for sweep variants (not recorded)
    variant_restores: int = 0  # sweep variant steps restored from the cache
    settled: dict[str, str] = field(default_factory=dict)  # step -> key confirmed this session
    diffs: list[VerifyDiff] = field(default_factory=list)
    results: dict[str, StepLock] = field(default_factory=dict)  # this session's outcomes

    @property
    def root(self) -> Path:
        return Path(self.loaded.root)

    @property
    def cache(self) -> Cache:
        return Cache(self.root)

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
            if not path.is_file():  # a FIFO must not block the run
                return None
            text = path.read_text(encoding="utf-8")
        except OSError:
            return None
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
        self.progress.batch(len(selection))
        for name in selection:
            st = self.state(name)
            missing_deps(self.loaded, st)
            reasons: list[str] = []
            if self.verify and self.verify_only and name not in self.verify_only:
                self._upstream_fresh(st)
                continue
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
                    # a step already confirmed this session (a sweep's upstream) is not
                    # announced or counted twice
                    self.progress.skip(name, quiet=self.settled.get(name) == st.key)
                    if name not in self.skipped + self.ran + self.restored:
                        self.skipped.append(name)
                    self.results[name] = fresh
                    if self.record:
                        self.settled[name] = st.key
                        if self.lock.steps.get(name) != fresh:
                            self._store(name, fresh)  # adopt a CI record
                        elif self._record(name) != fresh:
                            self._store_record(name, fresh)  # e.g. left by another branch
                    continue
            if (not self.verify and self.restore and name not in self.force_steps
                    and self._restore(st)):
                continue
            self._execute(st)

    def _upstream_fresh(self, st: StepState) -> None:
        """`--verify STEP`: an upstream step that is not verified must be up to date."""
        fresh = self.fresh_entry(st)
        if fresh is None:
            entry = self.lock.steps.get(st.name)
            why = "; ".join(stale_reasons(st, entry, self.lock, self.env, self.hasher))
            raise MlspecError([Diagnostic.nowhere(
                f"cannot verify {', '.join(sorted(self.verify_only))}: upstream step "
                f"'{st.name}' is stale ({why or 'its outs do not match the lock'})",
                "run.verify-upstream",
                f"bring it up to date first (`mlspec run {st.name}`, or restore its outs and "
                f"{layout.record(st.name)} from CI), or verify it too "
                f"(`mlspec run --verify {st.name} ...`)")])
        self.progress.skip(st.name)
        if st.name not in self.skipped:
            self.skipped.append(st.name)
        self.results[st.name] = fresh

    # -- the local cache -------------------------------------------------------------------
    def _restore(self, st: StepState) -> bool:
        """Put a stale step's outs back from the local cache when it holds the step's key;
        record its entry as a run would. False (then the step executes) on any miss."""
        run = self.cache.lookup(st.key)
        if run is None:
            return False
        for out in st.outs:
            escape = self._escape(out)
            if escape is not None:
                return False
        try:
            self.cache.restore(run)
        except RestoreFailed as exc:
            self.progress.say(f"· {st.name}: the local cache could not restore it ({exc}); "
                              "running it")
            return False
        entry = run.entry
        self.progress.skip_restored(st.name)
        self.results[st.name] = entry
        self.settled.pop(st.name, None)
        if not self.record:
            self.variant_restores += 1
            return True
        if st.name not in self.restored:
            self.restored.append(st.name)
            if st.name in self.skipped:
                self.skipped.remove(st.name)
        self.settled[st.name] = st.key
        self._store(st.name, entry)
        return True

    def _keep(self, st: StepState, entry: StepLock) -> None:
        """Store a successful run's outs in the local cache (an optimisation: a failure to
        store costs nothing but a later re-execution)."""
        trees: dict[str, list[tuple[str, str]] | None] = {}
        try:
            for out in entry.outs:
                trees[out] = self.hasher.tree(out)
        except (OSError, NotRegularFile):
            return
        for out, files in trees.items():
            if files is not None and tree_hash(files) != entry.outs[out]:
                return  # changed since it was hashed
        self.cache.store(entry, trees)

    def _execute(self, st: StepState) -> None:
        name, step = st.name, st.step
        self.progress.start(name, st.command)
        for out in st.outs:
            (self.root / out.rstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        if step.estimator is not None:

            argv: list[str] | str = builtin_argv(builtin_config(self.loaded, name, st.params))
        else:
            argv = st.command
        self.settled.pop(name, None)
        try:
            rc = run_process(name, argv, self.root, dict(st.params), self.progress.say,
                             on_spawn=self.on_spawn,
                             timeout_minutes=step.resources.timeout_minutes)
        except StepTimedOut:
            limit = step.resources.timeout_minutes
            self.progress.done(name, False, f"timed out after {limit} min")
            stage = self.loaded.graph.stage[name]
            raise StepFailed(name, f"it ran longer than its timeout_minutes ({limit}) and "
                             "was stopped", diagnostics=[self.loaded.diag(
                                 (stage, "steps", name, "resources", "timeout_minutes"),
                                 f"step '{name}' ran longer than its timeout_minutes "
                                 f"({limit})", "run.timeout",
                                 "raise resources.timeout_minutes, or make the step faster")]
                             ) from None
        if rc != 0:
            self.progress.done(name, False, f"exit code {rc}")
            raise StepFailed(name, f"its command exited with code {rc}")
        outs: dict[str, str] = {}
        for out in st.outs:
            escape = self._escape(out)
            if escape is not None:
                self.progress.done(name, False, f"{out} leaves the repository")
                raise StepFailed(name, escape)
            try:
                h = self.hasher.hash_path(out)
            except NotRegularFile as err:
                self.progress.done(name, False, f"{out} is a {err.kind}")
                raise StepFailed(name, err.for_step(name, "out").diagnostics[0].message
                                 ) from None
            if h is None:
                self.progress.done(name, False, f"{out} missing")
                raise StepFailed(name, f"it did not write its out '{out}'")
            outs[out] = h
        try:
            metrics = self._metrics(name, step.metrics)
        except StepFailed as err:
            self.progress.done(name, False, "unusable metrics")
            raise err
        if step.checks is not None:
            results = data_checks.run_checks(self.root, step.outs, step.checks)
            if not all(r.ok for r in results):
                self.progress.done(name, False, "data checks failed")
                raise StepFailed(name, "data checks failed", data_checks.render(results))
        entry = st.record(outs, metrics)
        if not self.verify:
            self._keep(st, entry)
        if not self.record and not self.verify:
            self.variant_runs += 1
        elif name not in self.ran:
            self.ran.append(name)
            for other in (self.skipped, self.restored):
                if name in other:
                    other.remove(name)
        if self.record and not self.verify:
            self.settled[name] = st.key
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
        self._store_record(name, entry)

    def _store_record(self, name: str, entry: StepLock) -> None:
        try:
            write_atomic(self.root / layout.record(name),
                         Lock(env=dict(self.env), steps={name: entry}).dump())
        except OSError as exc:
            raise MlspecError([Diagnostic(
                "", 0, 0, f"cannot write {layout.record(name)}: {exc.strerror}",
                "run.state", f"make sure {layout.STATE} and {layout.RECORDS} are writable "
                "directories (remove whatever is in the way)")]) from None

    def _escape(self, out: str) -> str | None:
        """Why an out (or a link inside an out directory) points outside the repository."""
        root = os.path.realpath(self.root)
        full = os.path.join(self.root, out.rstrip("/"))
        links = [full]
        if os.path.isdir(full) and not os.path.islink(full):
            for top, dirs, files in os.walk(full):
                links += [os.path.join(top, n) for n in dirs + files]
        for path in links:
            if not os.path.islink(path) and path != full:
                continue
            real = os.path.realpath(path)
            if real != root and not real.startswith(root + os.sep):
                rel = os.path.relpath(path, self.root).replace(os.sep, "/")
                target = os.readlink(path) if os.path.islink(path) else real
                return (f"its out '{rel}' is a symlink to '{target}', outside the repository; "
                        "an out must be a file or directory inside it")
        return None

    def _metrics(self, name: str, rel: str | None) -> dict[str, float]:
        if rel is None:
            return {}
        try:
            return read_metrics(self.root, rel)
        except FileNotFoundError:
            raise StepFailed(name, f"it did not write its metrics file '{rel}'") from None
        except MetricsError as exc:
            raise StepFailed(name, str(exc)) from None
        except OSError as exc:
            raise StepFailed(name, f"cannot read its metrics file '{rel}': {exc}") from None

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

"""Sweeps: run a step's param grid, record each variant's metrics, pick the best.

`mlspec run --sweep` runs, for every grid point of each swept step, that step and its
downstream (where the metrics come from), without touching the steps' lock entries; then the
normal run restores the spec's params and records the `sweeps` section of the lock.

Every run also leaves a variant record, `.mlspec/sweeps/<step>/<params>.json`, keyed by the
variant's inputs. A variant whose record matches is not rerun. That is how CI fans out: each
matrix job runs `mlspec run --no-gates --set n_estimators=50` and uploads `.mlspec/sweeps/`;
the pick-best job downloads them all and runs `mlspec run --sweep`, which finds every variant
recorded, reruns none, and picks the best by the design's primary metric. When the matrix
jobs upload `.mlspec/cache/` too, the spec's own variant's outs are restored from it
(mlspec.run.cache): the pick-best job executes nothing.

Under `--jobs N` (N > 1) the variants left to run run N at once, each in a scratch copy of
the project (without .git and .mlspec; its local cache is the project's, so what a variant
stores is there for the normal run to restore): variants write the same outs and params.json,
so they cannot share the working tree. Their steps' output goes to
`.mlspec/logs/<swept step>@<params>/<step>.log`. A failing variant fails the run as in a
sequential sweep (the first failed variant in grid order is reported, with its log's tail);
variants already running finish and keep their records (valid: keyed by their inputs).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mlspec import layout
from mlspec.errors import Diagnostic, MlspecError
from mlspec.fsutil import write_atomic
from mlspec.run import scheduler
from mlspec.run.hashing import Hasher, canonical, sha256_bytes
from mlspec.run.lock import Scalar, SweepLock, write_lock
from mlspec.run.progress import Progress
from mlspec.run.session import Session
from mlspec.tables import num, table

SWEEPS = layout.SWEEPS


def grid(sweep: Mapping[str, Sequence[Scalar]]) -> list[dict[str, Scalar]]:
    names = sorted(sweep)
    return [dict(zip(names, combo, strict=True))
            for combo in itertools.product(*(sweep[n] for n in names))]


def _slug(params: dict[str, Scalar]) -> str:
    text = ",".join(f"{k}={params[k]}" for k in sorted(params))
    return re.sub(r"[^A-Za-z0-9_.,=-]", "_", text)[:150]


def _chain(session: Session, name: str) -> list[str]:
    """The swept step and everything downstream of it, in graph order."""
    chain: list[str] = session.loaded.graph.closure_down([name])
    return chain


def variant_key(session: Session, name: str) -> str:
    """Hash of a variant's inputs: the swept step's key and its downstream's definitions."""
    chain = _chain(session, name)
    produced = {o.rstrip("/") for s in chain for o in session.loaded.graph.steps[s].all_outs()}
    material: list[Any] = [session.state(name).key]
    for s in chain[1:]:
        step = session.loaded.graph.steps[s]
        deps = {d: session.hasher.hash_path(d) for d in step.deps
                if d.rstrip("/") not in produced}
        material.append([s, step.command or step.estimator, session.params_for(s), deps])
    return sha256_bytes(canonical(material))


def _record_path(session: Session, name: str, params: dict[str, Scalar]) -> Any:
    return session.root / SWEEPS / name / f"{_slug(params)}.json"


def read_variant(session: Session, name: str, params: dict[str, Scalar], key: str
                 ) -> dict[str, float] | None:
    path = _record_path(session, name, params)
    try:
        if not path.is_file():  # missing, or a FIFO that would block
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("key") == key and isinstance(data.get("metrics"),
                                                                         dict):
        return {k: v for k, v in data["metrics"].items() if isinstance(v, int | float)}
    return None


def write_variant(session: Session, name: str, params: dict[str, Scalar], key: str,
                  metrics: dict[str, float]) -> None:
    path = _record_path(session, name, params)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps({"key": key, "metrics": metrics, "params": params},
                                  indent=2, sort_keys=True) + "\n")


def _chain_metrics(session: Session, name: str) -> dict[str, float] | None:
    out: dict[str, float] = {}
    for s in _chain(session, name):
        res = session.results.get(s)
        if res is None:
            return None
        out.update(res.metrics)
    return out


def record_variants(session: Session, selection: list[str]) -> None:
    """After a normal run: record the variant each swept step just ran with (for CI fan-out)."""
    for name in selection:
        step = session.loaded.graph.steps[name]
        if not step.sweep or not all(s in session.results for s in _chain(session, name)):
            continue
        params = {k: session.params_for(name).get(k) for k in step.sweep}
        metrics = _chain_metrics(session, name)
        if metrics:
            write_variant(session, name, params, variant_key(session, name), metrics)


def _metric(session: Session) -> tuple[str | None, str]:
    design = session.loaded.spec.design
    if design is None or design.primary is None:
        return None, "maximize"
    return design.primary, design.metrics[design.primary].goal


def run_sweeps(session: Session, selection: list[str], jobs: int = 1
               ) -> tuple[str, dict[str, Any]]:
    swept = [s for s in selection if session.loaded.graph.steps[s].sweep]
    if not swept:
        return "no step in this run has a sweep\n", {}
    metric, goal = _metric(session)
    texts, data = [], {}
    base_overrides = {k: dict(v) for k, v in session.overrides.items()}
    for name in swept:
        step = session.loaded.graph.steps[name]
        chain = _chain(session, name)
        # upstream of the whole chain, normally: a downstream step may need another branch
        upstream = [s for s in session.loaded.graph.closure_up(chain) if s not in chain]
        scheduler.run(session, upstream, jobs)
        points = grid(step.sweep or {})
        keys, found = [], []
        for point in points:
            session.overrides = _with(base_overrides, name, point)
            keys.append(variant_key(session, name))
            found.append(read_variant(session, name, point, keys[-1]))
        todo = [i for i, m in enumerate(found) if m is None]
        ran: dict[int, dict[str, float]] = {}
        if jobs > 1 and len(todo) > 1:
            ran = _run_apart(session, name, [(points[i], keys[i]) for i in todo], jobs,
                             base_overrides)
            ran = {todo[j]: m for j, m in ran.items()}
        for i in todo:
            if i in ran:
                continue
            session.overrides = _with(base_overrides, name, points[i])
            session.record, session.force = False, True
            try:
                session.progress.say(f"sweep {name}: {_slug(points[i])}")
                scheduler.run(session, _chain(session, name), jobs)
            finally:
                session.record, session.force = True, False
            ran[i] = _chain_metrics(session, name) or {}
            write_variant(session, name, points[i], keys[i], ran[i])
        variants = [{"params": point, "metrics": found[i] if found[i] is not None else ran[i],
                     "cached": found[i] is not None} for i, point in enumerate(points)]
        session.overrides = base_overrides
        best = _best(variants, metric, goal)
        session.lock.sweeps[name] = SweepLock(
            metric=metric or "", best=dict(best["params"]) if best else {},
            variants=[{"params": v["params"], "metrics": v["metrics"]} for v in variants])
        write_lock(session.root, session.lock)
        texts.append(_render(name, variants, metric, best))
        data[name] = {"metric": metric, "best": best["params"] if best else None,
                      "variants": variants}
    return "".join(texts), data


def _with(base: dict[str, dict[str, Scalar]], name: str, point: dict[str, Scalar]
          ) -> dict[str, dict[str, Scalar]]:
    return {**base, name: {**base.get(name, {}), **point}}


def _run_apart(session: Session, name: str, todo: list[tuple[dict[str, Scalar], str]],
               jobs: int, base: dict[str, dict[str, Scalar]]) -> dict[int, dict[str, float]]:
    """Run variants at once, each in a scratch copy of the project (they write the same
    outs and params.json), sharing the local cache; returns each variant's metrics."""
    pool = scheduler.Pool(session, jobs)
    chain = _chain(session, name)
    labels = [f"{name}@{_slug(point)}" for point, _ in todo]
    out: dict[int, dict[str, float]] = {}
    session.progress.batch(len(todo) * len(chain))  # one pass over every variant's chain

    def work(label: str) -> None:
        i = labels.index(label)
        point, key = todo[i]
        with scratch_copy(session.root) as scratch:
            loaded = dataclasses.replace(session.loaded, root=scratch,
                                         path=scratch / session.loaded.path.relative_to(
                                             session.loaded.root))
            sub = Session(loaded, session.lock, Hasher(scratch), session.env,
                          Tagged(session.progress, _slug(point)),
                          overrides=_with(base, name, point), force=True, record=False,
                          on_spawn=session.on_spawn, spawn=pool.spawn)
            sub.run(chain)
            session.variant_runs += sub.variant_runs
            session.variant_restores += sub.variant_restores
            out[i] = _chain_metrics(sub, name) or {}
        write_variant(session, name, point, key, out[i])

    pool.run(labels, {label: [] for label in labels}, work,
             lambda _: scheduler.cpus(session, name))
    return out


class Tagged(Progress):
    """A variant's progress lines, on the run's own: each step named with the variant's
    params (`▶ train [n_estimators=50]: ...`)."""

    def __init__(self, parent: Progress, tag: str):
        super().__init__(0)
        self.parent, self.tag = parent, tag

    def say(self, text: str) -> None:
        self.parent.say(text)

    def batch(self, total: int) -> None:
        pass

    def start(self, name: str, what: str) -> None:
        self.parent.start(f"{name} [{self.tag}]", what)

    def skip(self, name: str, quiet: bool = False) -> None:
        self.parent.skip(f"{name} [{self.tag}]", quiet)

    def skip_restored(self, name: str) -> None:
        self.parent.skip_restored(f"{name} [{self.tag}]")

    def done(self, name: str, ok: bool, detail: str = "") -> None:
        self.parent.done(f"{name} [{self.tag}]", ok, detail)


@contextlib.contextmanager
def scratch_copy(root: Path) -> Iterator[Path]:
    """A copy of the project without .git and mlspec's state, whose local cache is the
    project's own; removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="mlspec-variant-"))
    try:
        dest = tmp / "project"
        try:
            shutil.copytree(root, dest, symlinks=True, copy_function=_copy_regular,
                            ignore=shutil.ignore_patterns(".git", layout.STATE))
        except (OSError, shutil.Error) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else (
                f"{len(exc.args[0])} file(s) could not be copied"
                if isinstance(exc, shutil.Error) and exc.args and isinstance(exc.args[0], list)
                else "copy failed")
            raise MlspecError([Diagnostic.nowhere(
                f"cannot copy the project for a sweep variant ({why})", "run.sweep-copy",
                "free space in the temporary directory, or run the sweep with --jobs 1 "
                "(variants then run one after another in the project itself)")]) from None
        cache = root / layout.CACHE
        cache.mkdir(parents=True, exist_ok=True)
        (dest / layout.CACHE).parent.mkdir(parents=True, exist_ok=True)
        (dest / layout.CACHE).symlink_to(cache.resolve(), target_is_directory=True)
        yield dest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _copy_regular(src: str, dst: str) -> None:
    """Copy a regular file; skip a FIFO, socket or device (shutil refuses a FIFO, which
    failed the whole copy; a device would be read to its end)."""
    if stat.S_ISREG(os.stat(src).st_mode):
        shutil.copy2(src, dst)


def _best(variants: list[dict[str, Any]], metric: str | None, goal: str
          ) -> dict[str, Any] | None:
    scored = [v for v in variants if metric and metric in v["metrics"]]
    if not scored:
        return None
    sign = 1 if goal == "maximize" else -1
    # ties go to the earliest grid point, so the pick is deterministic
    return max(scored, key=lambda v: (sign * v["metrics"][str(metric)],
                                      -variants.index(v)))


def _render(name: str, variants: list[dict[str, Any]], metric: str | None,
            best: dict[str, Any] | None) -> str:
    rows = []
    for v in variants:
        mark = "yes" if v is best else ""
        rows.append([_slug(v["params"]), num(v["metrics"].get(metric)) if metric else "-",
                     "cached" if v["cached"] else "ran", mark])
    head = f"sweep {name} (by {metric or 'no primary metric'})\n"
    text = head + table(["params", metric or "metric", "result", "best"], rows)
    if best:
        text += (f"best: {_slug(best['params'])}; set it in the step's params to adopt it\n")
    return text

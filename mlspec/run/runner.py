"""`mlspec run` and `mlspec status`: the api's entry points for running and inspecting steps.

run: steps in graph order (a named step brings its stale upstream), each skipped when its key
and outs match the lock, under a repository-wide run lock; then the gates. `--verify` reruns
everything and compares with the lock without rewriting it. `--sweep` runs each sweep grid
first (mlspec.run.sweep). Heavy modules (sklearn, git) are imported only when a step needs them.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from mlspec.errors import Diagnostic, MlspecError, Outcome
from mlspec.gitops.gates import evaluate, render
from mlspec.run.cache import Cache
from mlspec.run.execute import interrupt_on_sigterm, run_lock
from mlspec.run.hashing import Hasher
from mlspec.run.lock import Lock, Scalar, read_lock, write_lock
from mlspec.run.progress import Progress
from mlspec.run.session import Session, StepFailed
from mlspec.run.sklearn_step import validate_builtin_cached
from mlspec.run.stepkey import environment, stale_reasons, step_key, step_state
from mlspec.run.sweep import record_variants, run_sweeps
from mlspec.spec.yamlsafe import resolve_plain
from mlspec.tables import table

if TYPE_CHECKING:
    from mlspec.run.lock import StepLock
    from mlspec.run.session import Session
    from mlspec.run.stepkey import StepState
    from mlspec.spec.graph import Graph
    from mlspec.spec.loader import LoadedSpec


def _usage(message: str, rule: str, hint: str | None = None) -> MlspecError:
    return MlspecError([Diagnostic.nowhere(message, rule, hint)])


def select(loaded: LoadedSpec, steps: list[str]) -> list[str]:
    graph = loaded.graph
    for s in steps:
        if s not in graph.steps:
            close = difflib.get_close_matches(s, list(graph.steps), n=1)
            raise _usage(f"unknown step '{s}'", "run.unknown-step",
                         f"did you mean '{close[0]}'?" if close else
                         f"steps: {', '.join(graph.order)}")
    return graph.closure_up(steps) if steps else list(graph.order)


def parse_sets(loaded: LoadedSpec, sets: list[str], selection: list[str]
               ) -> dict[str, dict[str, Scalar]]:
    """`--set name=value` (or `step.name=value`) → per-step param overrides for this run."""

    graph = loaded.graph
    out: dict[str, dict[str, Scalar]] = {}
    for item in sets:
        name, eq, raw = item.partition("=")
        if not eq or not name.strip():
            raise _usage(f"--set '{item}' is not name=value", "run.bad-set",
                         "e.g. --set n_estimators=200")
        value = resolve_plain(raw.strip())
        if isinstance(value, list | dict) or value is None:
            value = raw.strip()
        step_name, dot, param = name.strip().rpartition(".")
        targets = [step_name] if dot else selection
        if dot and step_name not in graph.steps:
            raise _usage(f"--set '{item}': unknown step '{step_name}'", "run.bad-set")
        hit = [s for s in targets
               if param in graph.steps[s].params or param in (graph.steps[s].sweep or {})]
        if not hit:
            known = sorted({p for s in targets for p in graph.steps[s].params})
            raise _usage(f"--set '{item}': no step in this run has a param '{param}'",
                         "run.bad-set", f"params: {', '.join(known)}" if known else None)
        for s in hit:
            out.setdefault(s, {})[param] = value
    return out


def _has_metrics(loaded: LoadedSpec, selection: list[str]) -> bool:
    return any(loaded.graph.steps[s].metrics for s in selection)


def run_steps(loaded: LoadedSpec, steps: list[str], force: bool = False,
              sets: list[str] | None = None, verify: bool = False, sweep: bool = False,
              base: str | None = None, gates: bool = True) -> Outcome:

    selection = select(loaded, steps)
    overrides = parse_sets(loaded, sets or [], selection)
    if any(loaded.graph.steps[s].estimator for s in loaded.graph.steps):

        validate_builtin_cached(loaded)
    progress = Progress(len(selection))
    with interrupt_on_sigterm(), run_lock(loaded.root, progress.say) as held:
        lock = read_lock(loaded.root) or Lock()
        before = lock.dump()
        hasher = Hasher(loaded.root)
        session = Session(loaded, lock, hasher, environment(loaded, hasher), progress,
                          overrides=overrides, force=not steps and (verify or force),
                          force_steps=set(steps) if force else set(), verify=verify,
                          verify_only=set(steps) if verify else set(),
                          restore=not (force and not steps), on_spawn=held.spawned)
        sweep_text, sweep_data = "", None
        try:
            if sweep and not verify:

                sweep_text, sweep_data = run_sweeps(session, selection)
            session.run(selection)
            if not steps and not verify and session.record:
                _prune(session, loaded)
            if not verify:

                record_variants(session, selection)
        except StepFailed as err:
            progress.close()
            return _failed(session, err)
        finally:
            progress.close()
            hasher.save()
    return _finish(loaded, session, selection, verify, gates, base, sweep_text, sweep_data,
                   lock_before=before)


def _prune(session: Session, loaded: LoadedSpec) -> None:
    """A full run drops lock entries of steps the spec no longer has."""

    gone = [n for n in session.lock.steps if n not in loaded.graph.steps]
    gone_sweeps = [n for n in session.lock.sweeps
                   if n not in loaded.graph.steps or not loaded.graph.steps[n].sweep]
    for n in gone:
        del session.lock.steps[n]
    for n in gone_sweeps:
        del session.lock.sweeps[n]
    if gone or gone_sweeps:
        write_lock(loaded.root, session.lock)


def _failed(session: Session, err: Any) -> Outcome:
    text = f"step '{err.step}' failed: {err.message}\n"
    if err.detail:
        text += err.detail
    done = f"ran {len(session.ran)}, skipped {len(session.skipped)} before the failure; "
    done += "mlspec.lock keeps the failed step's previous entry\n"
    return Outcome(code=1, text=text + done, diagnostics=list(err.diagnostics),
                   data={"ok": False, "failed": err.step, "error": err.message,
                         "detail": err.detail,
                         "ran": session.ran, "skipped": session.skipped})


def _finish(loaded: LoadedSpec, session: Session, selection: list[str], verify: bool,
            gates: bool, base: str | None, sweep_text: str, sweep_data: Any,
            lock_before: str) -> Outcome:
    code = 0
    parts = [sweep_text] if sweep_text else []
    summary = f"ran {len(session.ran)}, skipped {len(session.skipped)} (up to date)"
    if session.restored:
        summary += f", restored {len(session.restored)} from the cache"
    if session.variant_runs:
        summary += f"; {session.variant_runs} step run(s) for sweep variants"
    if session.variant_restores:
        summary += f"; {session.variant_restores} sweep variant step(s) restored from the cache"
    data: dict[str, Any] = {"ok": True, "ran": session.ran, "skipped": session.skipped,
                            "restored": session.restored}
    if sweep_data is not None:
        data["sweeps"] = sweep_data
    if verify:
        data["verify"] = [d.__dict__ for d in session.diffs]
        if session.diffs:
            code = 1
            parts.append("verify: the rerun differs from mlspec.lock\n" + table(
                ["step", "what", "mlspec.lock", "rerun"],
                [[d.step, d.what, d.locked, d.rerun] for d in session.diffs]))
        else:
            parts.append(f"verify: {len(session.ran)} step(s) rerun; outs and metrics match "
                         "mlspec.lock\n")
    else:
        if not session.ran and not session.restored:
            parts.append(summary + "\n")
        elif session.lock.dump() != lock_before:
            parts.append(summary + "; mlspec.lock updated\n")
        elif session.ran:
            parts.append(summary + "; mlspec.lock unchanged (the rerun reproduced it)\n")
        else:
            parts.append(summary + "; mlspec.lock unchanged\n")
    if gates and _has_metrics(loaded, selection):

        metrics = session.lock.metrics()
        for res in session.results.values():
            metrics.update(res.metrics)
        results, ref = evaluate(loaded, metrics, base)
        if results:
            parts.append(render(results, ref))
            data["gates"] = [r.to_data() for r in results]
            data["base"] = ref
            if any(r.verdict == "FAIL" for r in results):
                code = 1
                parts.append("gates failed\n")
    data["ok"] = code == 0
    return Outcome(code=code, text="".join(p if p.endswith("\n") else p + "\n" for p in parts)
                   .rstrip("\n"), data=data)


def status(loaded: LoadedSpec) -> Outcome:
    """Which steps are stale and exactly why; informational, so exit 0 either way."""

    lock = read_lock(loaded.root)
    hasher = Hasher(loaded.root)
    env = environment(loaded, hasher)
    graph = loaded.graph
    stale: dict[str, list[str]] = {}
    relock: set[str] = set()  # stale steps whose key differs from the lock (the lock changes)
    cached: set[str] = set()  # stale steps `mlspec run` would restore from the local cache
    cache = Cache(loaded.root)
    report: dict[str, Any] = {}
    for name in graph.order:
        step = graph.steps[name]
        st = step_state(name, step, dict(step.params), env, hasher)
        entry = lock.steps.get(name) if lock is not None else None
        reasons = stale_reasons(st, entry, lock, env, hasher)
        ups = [u for u in graph.upstream[name] if u in stale]
        reasons.extend(f"upstream step '{u}' is stale" for u in ups)
        if reasons:
            stale[name] = reasons
            if entry is None or not _rebuilds_to(st, entry, set(stale) - relock, graph, env):
                relock.add(name)
            # the key is the one the run will look up only when no upstream step changes first
            if not ups and cache.lookup(st.key) is not None:
                cached.add(name)
        report[name] = {"stale": bool(reasons), "reasons": reasons, "key": st.key,
                        "cached": name in cached}
    hasher.save()
    lines = []
    for name in graph.order:
        if name in stale:
            lines.append(f"{name}: stale" + (" — in the local cache" if name in cached else ""))
            lines.extend(f"  - {r}" for r in stale[name])
        else:
            lines.append(f"{name}: up to date")
    n = len(stale)
    lines.append(f"{n} of {len(graph.order)} step(s) stale" if n else "everything is up to date")
    advice = _advice(lock is not None, bool(stale), bool(relock))
    if advice:
        lines.append(advice)
    return Outcome(text="\n".join(lines), data={"steps": report, "stale": list(stale),
                                                 "lock": lock is not None, "advice": advice})


def _rebuilds_to(st: StepState, entry: StepLock, rebuilt_steps: set[str],
                 graph: Graph, env: dict[str, str]) -> bool:
    """Whether rerunning reproduces the lock's key: it matches once the deps that upstream
    steps rebuild (stale ones whose key matches the lock) are as the lock has them."""

    if entry.key == st.key:
        return True
    rebuilt = {o for u in graph.upstream[st.name] if u in rebuilt_steps
               for o in graph.steps[u].all_outs()}
    deps = {p: (entry.deps.get(p) if p in rebuilt else h) for p, h in st.deps.items()}
    return step_key(st.step, st.params, deps, env) == entry.key


def _advice(has_lock: bool, stale: bool, relock: bool) -> str:
    """What to run: the exact command, and whether mlspec.lock will change (then commit it)."""
    if not has_lock:
        return "no mlspec.lock yet: run `mlspec run`, then commit mlspec.lock"
    if not stale:
        return ""
    if relock:
        return "to bring them up to date: run `mlspec run`, then commit mlspec.lock"
    return ("to bring them up to date: run `mlspec run` (mlspec.lock already matches the "
            "inputs: it rebuilds the outs, and mlspec.lock stays as it is when the steps are "
            "deterministic)")

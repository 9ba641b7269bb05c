"""A step's key, and why a step is stale: which dep, param, command, environment or out changed.

The key is the sha256 of everything that can change a step's result: its command (or built-in
estimator settings), params, declared outs, the content hash of every dep, and the
environment (Python version, the requirements file's hash).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlspec.errors import Diagnostic, MlspecError
from mlspec.run.hashing import Hasher, NotRegularFile, canonical, sha256_bytes
from mlspec.run.lock import Lock, Scalar, StepLock

if TYPE_CHECKING:
    from mlspec.spec.loader import LoadedSpec
    from mlspec.spec.step import Step


def python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def environment(loaded: LoadedSpec, hasher: Hasher) -> dict[str, str]:
    """What every step's key includes about the environment it runs in."""
    req = loaded.spec.project.requirements
    try:
        req_hash = (hasher.hash_path(req) or "missing") if req else "none"
    except NotRegularFile as err:
        raise err.for_step("", "project.requirements") from None
    return {"python": python_version(), "requirements": req_hash}


def command_of(step: Step) -> str:
    """The command recorded in the lock; built-in estimator steps are named by their class."""
    return step.command if step.command is not None else f"mlspec estimator {step.estimator}"


def dep_paths(step: Step) -> list[str]:
    """Declared deps plus the CSV a built-in estimator trains on."""
    deps = list(step.deps)
    if step.dataset is not None and step.dataset.path and step.dataset.path not in deps:
        deps.append(step.dataset.path)
    return deps


@dataclass
class StepState:
    """A step as it would run now: its inputs' hashes and its key."""

    name: str
    step: Step
    command: str
    params: dict[str, Scalar]
    deps: dict[str, str | None]
    key: str
    outs: list[str] = field(default_factory=list)

    def record(self, outs: dict[str, str], metrics: dict[str, float]) -> StepLock:
        return StepLock(key=self.key, command=self.command,
                        deps={p: h for p, h in self.deps.items() if h is not None},
                        params=dict(self.params), outs=outs, metrics=metrics)


def step_state(name: str, step: Step, params: dict[str, Scalar], env: dict[str, str],
               hasher: Hasher) -> StepState:
    try:
        deps = hasher.hash_many(dep_paths(step))
    except NotRegularFile as err:
        raise err.for_step(name, "dep") from None
    command = command_of(step)
    return StepState(name=name, step=step, command=command, params=params, deps=deps,
                     key=step_key(step, params, deps, env), outs=step.all_outs())


def step_key(step: Step, params: dict[str, Scalar], deps: dict[str, str | None],
             env: dict[str, str]) -> str:
    """The key of a step run with these params, dep hashes and environment."""
    material = {**key_material(step, params), "deps": deps, "env": env}
    return sha256_bytes(canonical(material))


def key_material(step: Step, params: dict[str, Scalar]) -> dict[str, Any]:
    """What a step's key hashes from its definition (the deps' content and the environment
    are added by `step_key`). The one list: CI cache keys (mlspec.compile) hash it too."""
    material: dict[str, Any] = {
        "command": command_of(step), "params": params, "outs": sorted(step.all_outs()),
    }
    if step.estimator is not None:
        material["builtin"] = {
            "estimator": step.estimator,
            "dataset": step.dataset.model_dump() if step.dataset else None,
            "split": step.split.model_dump() if step.split else None,
            "metrics": step.metrics,
        }
    return material


def missing_deps(loaded: LoadedSpec, st: StepState) -> None:
    """Raise a located error when a dep is missing at the moment the step should run."""
    missing = [p for p, h in st.deps.items() if h is None]
    if not missing:
        return
    stage = loaded.graph.stage[st.name]
    diags = []
    for p in missing:
        idx = st.step.deps.index(p) if p in st.step.deps else None
        key = (stage, "steps", st.name, "deps", idx) if idx is not None else \
            (stage, "steps", st.name, "dataset", "path")
        diags.append(loaded.diag(key, f"dep '{p}' of step '{st.name}' does not exist",
                                 "run.missing-dep",
                                 "create it, or list the step that writes it in its outs"))
    raise MlspecError(diags)


def outs_match(st: StepState, entry: StepLock, hasher: Hasher) -> list[str]:
    """Reasons the outs on disk differ from the recorded ones (empty: they match)."""
    reasons = []
    for out in st.outs:
        try:
            h = hasher.hash_path(out)
        except NotRegularFile as err:
            raise err.for_step(st.name, "out") from None
        if h is None:
            reasons.append(f"out {out} is missing")
        elif entry.outs.get(out) != h:
            reasons.append(f"out {out} differs from the lock")
    return reasons


def _fmt(v: Any) -> str:
    return "(unset)" if v is _UNSET else repr(v)


_UNSET = object()


def stale_reasons(st: StepState, entry: StepLock | None, lock: Lock | None,
                  env: dict[str, str], hasher: Hasher) -> list[str]:
    """Why a step must run: empty when its key and outs match the recorded entry."""
    if entry is None:
        return ["never run (not in mlspec.lock)"]
    reasons: list[str] = []
    if entry.key != st.key:
        if entry.command != st.command:
            reasons.append(f"command changed: {entry.command!r} → {st.command!r}")
        for name in sorted(set(entry.params) | set(st.params)):
            old, new = entry.params.get(name, _UNSET), st.params.get(name, _UNSET)
            if old != new or type(old) is not type(new):
                reasons.append(f"param {name}: {_fmt(old)} → {_fmt(new)}")
        for path in sorted(set(entry.deps) | set(st.deps)):
            old_h, new_h = entry.deps.get(path), st.deps.get(path, _UNSET)
            if new_h is _UNSET:
                reasons.append(f"dep {path} removed")
            elif new_h is None:
                reasons.append(f"dep {path} is missing")
            elif old_h is None:
                reasons.append(f"dep {path} added")
            elif old_h != new_h:
                reasons.append(f"dep {path} changed")
        if lock is not None and lock.env:
            for k in sorted(set(lock.env) | set(env)):
                if lock.env.get(k) == env.get(k):
                    continue
                if k == "python":
                    reasons.append(f"environment: python {lock.env.get(k)} → {env.get(k)}")
                else:
                    reasons.append(f"environment: the {k} file changed")
        if not reasons:
            reasons.append("key changed: the environment or the step's definition (outs, "
                           "metrics file, estimator settings)")
    outs = outs_match(st, entry, hasher)
    if outs and entry.key == st.key:  # the inputs match the lock; the outs on disk do not
        outs = [r + (" (it was built from other inputs, e.g. on another branch: outs are "
                     "git-ignored and a `git checkout` leaves them as they were)"
                     if r.endswith("differs from the lock") else "") for r in outs]
    reasons.extend(outs)
    return reasons


def located(loaded: LoadedSpec, name: str, message: str, rule: str,
            hint: str | None = None) -> Diagnostic:
    return loaded.diag((loaded.graph.stage[name], "steps", name), message, rule, hint)

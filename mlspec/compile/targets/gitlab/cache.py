"""GitLab cache keys: computed from the commit alone by the flow's first job.

GitLab restores a job's cache before its script runs, so a key cannot come from
`mlspec status` inside the job (the GitHub target's exact key). Instead the flow's first job
hashes, for every step in graph order, the step's own repository files (deps that no step
produces, plus the requirements file) together with the keys of the steps whose outs it reads:
a Merkle hash of everything upstream. It writes the keys to a dotenv report, which GitLab hands
to the jobs that need it as variables usable in `cache:key`. A hit only saves time: `mlspec run`
still checks restored outs against the lock and the step records.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlspec import layout

if TYPE_CHECKING:
    from mlspec.compile.model import Flow, Job, Plan, StepFacts

KEYS_ENV = "mlspec-keys.env"
RECORDS = layout.RECORDS


def env_key(name: str) -> str:
    return re.sub(r"[^A-Z0-9_]", "_", name.upper())


@dataclass
class CacheSpec:
    var: str  # dotenv variable holding the key, set by the first job
    prefix: str  # static part: a hash of the step definitions
    steps: tuple[str, ...]  # whose inputs key it
    paths: list[str]


class CacheKeys:
    """The caches of one flow's jobs and the shell that computes their keys."""

    def __init__(self, plan: Plan, flow: Flow):
        self.plan = plan
        self.shell = _unique_names([*(f"step:{n}" for n in plan.order),
                                    *(f"job:{j.id}" for j in flow.jobs)])
        self.caches = {j.id: c for j in flow.jobs if (c := self.spec(j)) is not None}

    def spec(self, job: Job) -> CacheSpec | None:
        """The plan's cache of a step job. GitLab-specific: each sweep variant caches its outs
        and records (`mlspec run` leaves .mlspec/steps/<step>.lock), keyed by the group's
        inputs and the variant's values, so an unchanged variant is not retrained; the select
        job caches the outs and records of the whole group (run with the spec's params), not
        only the swept step's outs, so the steps after it are not recomputed either."""
        steps = self.plan.steps
        var = self.var(job.id)
        if job.kind not in ("sweep", "select"):
            if job.cache is None:
                return None
            return CacheSpec(var, job.cache.prefix, (job.cache.step,),
                             [*job.cache.paths, f"{RECORDS}/{job.cache.step}.lock"])
        static = {"mlspec": self.plan.version, "python": self.plan.python, "kind": job.kind,
                  "steps": {n: json.loads(steps[n].definition) for n in job.steps},
                  "axes": [[a, [str(v) for v in vs]] for a, vs in
                           (job.matrix.axes if job.matrix is not None else ())]}
        digest = hashlib.sha256(json.dumps(static, sort_keys=True).encode()).hexdigest()[:12]
        outs = [o for n in job.steps for o in steps[n].outs]
        outs += [f"{RECORDS}/{n}.lock" for n in job.steps]
        if job.kind == "sweep":
            outs += [p for a in job.uploads for p in a.paths]
        return CacheSpec(var, f"mlspec-{job.id}-{digest}-", job.steps, list(dict.fromkeys(outs)))

    def var(self, job_id: str) -> str:
        return "MLSPEC_CACHE_" + self.shell[f"job:{job_id}"]

    def script(self) -> list[str]:
        """Shell computing every cache key from the commit alone (a Merkle hash: a step's
        repo files, plus the keys of the steps whose outs it reads)."""
        steps = self.plan.steps
        lines = ['mlspec_hash() { for f in "$@"; do if [ -d "$f" ]; then find "$f" -type f '
                 "-print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum; elif [ -f \"$f\" ]; then "
                 'sha256sum "$f"; else echo "absent $f"; fi; done | sha256sum | cut -c1-16; }',
                 ]
        needed = _closure_up(steps, {n for c in self.caches.values() for n in c.steps})
        requirements = self.plan.requirements
        position = {n: i for i, n in enumerate(self.plan.order)}
        for name in self.plan.order:
            if name not in needed:
                continue
            st = steps[name]
            files = [*st.deps, *([requirements] if requirements else [])]
            made = {**{f: None for f in files}, **dict(zip(st.deps, st.producers, strict=True))}
            own = [f for f in files if made[f] is None]
            ups = sorted({p for p in made.values() if p is not None}, key=position.__getitem__)
            parts = [f'"$(mlspec_hash {" ".join(_sh(f) for f in own)})"'] * bool(own) + [
                f'"$K_{self.shell["step:" + u]}"' for u in ups]
            parts = parts or ["no-inputs"]
            k = self.shell["step:" + name]
            lines.append(f"K_{k}=$(printf '%s\\n' {' '.join(parts)} | sha256sum | cut -c1-16)")
        lines.append("{")
        for c in self.caches.values():
            ks = " ".join(f'"$K_{self.shell["step:" + n]}"' for n in c.steps)
            key = (f"$K_{self.shell['step:' + c.steps[0]]}" if len(c.steps) == 1 else
                   f"$(printf '%s\\n' {ks} | sha256sum | cut -c1-16)")
            lines.append(f'  echo "{c.var}={c.prefix}{key}"')
        lines.append(f"}} > {KEYS_ENV}")
        lines.append(f"cat {KEYS_ENV}")
        return ["\n".join(lines)]


def _closure_up(steps: dict[str, StepFacts], names: set[str]) -> set[str]:
    """names and every step whose outs they read, transitively."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        todo.extend(p for p in steps[n].producers if p is not None)
    return seen


def _sh(word: str) -> str:
    return shlex.quote(word)


def _unique_names(keys: list[str]) -> dict[str, str]:
    """Shell-safe, distinct upper-case names for step and job names (`a-b` and `a_b` differ)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for key in keys:
        base = env_key(key.split(":", 1)[1])
        name, i = base, 2
        while name in taken:
            name, i = f"{base}_{i}", i + 1
        taken.add(name)
        out[key] = name
    return out

"""CI cache keys, computed at run time from the committed spec and files.

A CI system reads a job's cache key before the job runs (GitLab's `cache:key`), when the outs
of upstream steps do not exist yet. So a CI key cannot hash upstream outs as a step's run key
does (mlspec.run.stepkey): it chains the CI keys of the steps that produce a step's deps
instead, a Merkle hash of everything upstream. A step's CI key hashes

- `stepkey.key_material` (the one list of what a step's result depends on: command, params,
  outs, built-in estimator settings),
- the content hash of each dep that no step produces (a committed file or directory),
- the CI key of the step that produces each other dep,
- the environment: the spec's Python version, the requirements file's hash, mlspec's version
  and the step's job image.

A param, dep or data change therefore changes the keys of exactly that step and the steps
downstream of it, and never a generated file. `mlspec status --ci-keys` prints them as dotenv
lines (`MLSPEC_CACHE_STEP_TRAIN=mlspec-train-<hash>`), read by the generated pipelines. A hit
only saves time: `mlspec run` still checks restored outs against the lock and the records.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from mlspec import __version__
from mlspec.errors import Outcome
from mlspec.run.hashing import Hasher, NotRegularFile, canonical, sha256_bytes
from mlspec.run.stepkey import dep_paths, key_material

if TYPE_CHECKING:
    from mlspec.spec.graph import Graph
    from mlspec.spec.loader import LoadedSpec

KEY_CHARS = 32  # hex digits of a CI key (128 bits)
PREFIX = "MLSPEC_CACHE_"


def sweep_groups(graph: Graph) -> list[list[str]]:
    """Steps that fan out together: a sweep step and everything downstream of it (where its
    metrics come from; mlspec.run.sweep keys a variant by that chain). Disjoint, graph order."""
    grouped: set[str] = set()
    groups: list[list[str]] = []
    for name in graph.order:
        if name in grouped or not graph.steps[name].sweep:
            continue
        members = [n for n in graph.closure_down([name]) if n not in grouped]
        grouped.update(members)
        groups.append(members)
    return groups


def sweep_axes(graph: Graph, members: list[str]) -> list[tuple[str, tuple[object, ...]]]:
    """The matrix of a sweep group: param name -> values, in spec order."""
    axes: list[tuple[str, tuple[object, ...]]] = []
    for m in members:
        for param, values in (graph.steps[m].sweep or {}).items():
            if param not in dict(axes):
                axes.append((param, tuple(values)))
    return axes


def shell_names(graph: Graph) -> dict[str, str]:
    """Distinct upper-case variable-name parts for the steps (`a-b` and `a_b` differ)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in graph.order:
        base = re.sub(r"[^A-Z0-9_]", "_", name.upper())
        cand, i = base, 2
        while cand in taken:
            cand, i = f"{base}_{i}", i + 1
        taken.add(cand)
        out[name] = cand
    return out


def key_vars(graph: Graph) -> dict[tuple[str, str], str]:
    """(kind, step) -> the variable that holds that cache key: kind `step` for every step,
    `sweep` (one matrix variant, suffixed by its index in CI) and `select` for the first step
    of each sweep group."""
    names = shell_names(graph)
    out = {("step", n): f"{PREFIX}STEP_{names[n]}" for n in graph.order}
    for grp in sweep_groups(graph):
        out[("sweep", grp[0])] = f"{PREFIX}SWEEP_{names[grp[0]]}"
        out[("select", grp[0])] = f"{PREFIX}SELECT_{names[grp[0]]}"
    return out


def _short(material: object) -> str:
    return sha256_bytes(canonical(material)).removeprefix("sha256:")[:KEY_CHARS]


def ci_keys(loaded: LoadedSpec, hasher: Hasher) -> dict[str, str]:
    """step -> its CI key (graph order), from the committed spec and files alone."""
    spec, graph = loaded.spec, loaded.graph
    req = spec.project.requirements
    try:
        req_hash = (hasher.hash_path(req) or "missing") if req else "none"
    except NotRegularFile as err:
        raise err.for_step("", "project.requirements") from None
    keys: dict[str, str] = {}
    for name in graph.order:
        step = graph.steps[name]
        own: dict[str, str | None] = {}
        upstream: dict[str, str] = {}
        for dep in dep_paths(step):
            producer = graph.producer_of(dep)
            if producer is not None and producer != name:
                upstream[dep] = keys[producer]
                continue
            try:
                own[dep] = hasher.hash_path(dep)
            except NotRegularFile as err:
                raise err.for_step(name, "dep") from None
        keys[name] = _short({
            **key_material(step, dict(step.params)), "deps": own, "upstream": upstream,
            "env": {"python": spec.project.python, "requirements": req_hash,
                    "mlspec": __version__, "image": step.resources.image}})
    return keys


def cache_keys(loaded: LoadedSpec, hasher: Hasher) -> dict[str, str]:
    """Variable name -> cache key, for every key a generated pipeline reads."""
    graph = loaded.graph
    keys = ci_keys(loaded, hasher)
    groups = {grp[0]: grp for grp in sweep_groups(graph)}
    out: dict[str, str] = {}
    for (kind, name), var in key_vars(graph).items():
        if kind == "step":
            out[var] = f"mlspec-{name}-{keys[name]}"
            continue
        grp = groups[name]
        axes = [[p, [str(v) for v in vs]] for p, vs in sweep_axes(graph, grp)]
        digest = _short({"kind": kind, "keys": [keys[m] for m in grp], "axes": axes})
        out[var] = f"mlspec-{kind}-{name}-{digest}"
    return out


def keys_outcome(loaded: LoadedSpec) -> Outcome:
    """`mlspec status --ci-keys`: dotenv lines (GitLab dotenv report, GitHub $GITHUB_OUTPUT)."""
    hasher = Hasher(loaded.root)
    keys = cache_keys(loaded, hasher)
    hasher.save()
    return Outcome(text="\n".join(f"{k}={v}" for k, v in sorted(keys.items())),
                   data={"ci_keys": keys})

"""Load a spec: YAML (with positions) → stage files grafted → content checks → pydantic.

Every problem becomes a located Diagnostic; all of them are collected and raised together.
"""

from __future__ import annotations

import gc
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic_core import PydanticCustomError

from mlspec.errors import Diagnostic, MlspecError
from mlspec.spec.common import normalise_path
from mlspec.spec.graph import Graph
from mlspec.spec.root import Spec
from mlspec.spec.semantics import check_semantics
from mlspec.spec.source import SpecSource
from mlspec.spec.textrules import string_problem, text_checks, version_check
from mlspec.spec.validate import validate_model
from mlspec.spec.yamlsafe import Key, Loc, Yaml, read_yaml

STAGE_KEYS = ("design", "data", "model", "inference", "ci")

# Literal credentials where only a secret's *name* belongs.
_SECRET_PATTERNS = [
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), "a GitHub token"),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"), "a GitHub token"),
    (re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"), "a GitLab token"),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key"),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (re.compile(r"\bsk-[A-Za-z0-9]{32,}"), "an API secret key"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
]
_EXPR = re.compile(r"\$\{\{|\$\[\[")


@dataclass(kw_only=True)
class LoadedSpec(SpecSource):
    """A validated spec, its step graph and its hash, with the positions of its nodes."""

    spec: Spec
    graph: Graph
    spec_hash: str


def display_path(path: Path, base_display: str, root: Path) -> str:
    """How a file is named in diagnostics: beside the root spec as the user named it."""
    rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    base_dir = os.path.dirname(base_display)
    return f"{base_dir}/{rel}" if base_dir else rel


def _walk_strings(data: Yaml, key: Key = ()) -> Iterator[tuple[Key, str]]:
    if isinstance(data, str):
        yield key, data
    elif isinstance(data, dict):
        for k, v in data.items():
            yield (*key, k), k
            yield from _walk_strings(v, (*key, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _walk_strings(v, (*key, i))


def content_checks(data: Yaml, loaded: SpecSource) -> list[Diagnostic]:
    """Checks on raw values, before the schema: CI expressions and literal secrets."""
    diags: list[Diagnostic] = []
    seen: set[Key] = set()
    for key, text in _walk_strings(data):
        if _EXPR.search(text) and key not in seen:
            seen.add(key)
            diags.append(loaded.diag(
                key, "CI expression syntax ('${{' or '$[[') in a spec value", "spec.ci-expression",
                "values reach CI jobs through env; an expression here could inject code. "
                "Write the literal value, or read an environment variable in your script"))
        for pattern, what in _SECRET_PATTERNS:
            if pattern.search(text) and key not in seen:
                seen.add(key)
                diags.append(loaded.diag(
                    key, f"this looks like {what}: a literal secret value in the spec",
                    "spec.secret-literal",
                    "store it as a CI secret and give its NAME under ci.secrets; "
                    "rotate the leaked value"))
    return diags


def _graft_stage_files(data: dict[str, Yaml], loaded: SpecSource,
                       diags: list[Diagnostic]) -> None:
    for stage in STAGE_KEYS:
        ref = data.get(stage)
        if not isinstance(ref, str):
            continue
        key = (stage,)
        problem = string_problem(ref, key)
        if problem is not None:
            rule, message, hint = problem
            diags.append(loaded.diag(key, message, rule, hint))
            data[stage] = None
            loaded.broken.add(stage)
            continue
        try:
            rel = normalise_path(ref)
        except PydanticCustomError as exc:
            diags.append(loaded.diag(key, f"stage file: {exc}", "spec.unsafe-path"))
            data[stage] = None
            loaded.broken.add(stage)
            continue
        target = loaded.root / rel
        resolved = Path(os.path.realpath(target))  # never raises, even on a symlink loop
        if not resolved.is_relative_to(loaded.root):
            diags.append(loaded.diag(key, f"stage file '{ref}' resolves outside the repository",
                                     "spec.unsafe-path", "do not link spec files out of the repo"))
            data[stage] = None
            loaded.broken.add(stage)
            continue
        if not os.path.isfile(target):  # never raises (ENAMETOOLONG, loops, NUL)
            what = ("is not a file (or is a dangling or looping symlink)"
                    if os.path.lexists(target) else "does not exist")
            diags.append(loaded.diag(key, f"stage file '{ref}' {what}",
                                     "spec.missing-file",
                                     f"create {rel}, or write the '{stage}' section inline"))
            data[stage] = None
            loaded.broken.add(stage)
            continue
        shown = display_path(target, loaded.display, loaded.root)
        try:
            sub = read_yaml(target, shown)
        except MlspecError as err:
            diags.extend(err.diagnostics)
            data[stage] = None
            loaded.broken.add(stage)
            continue
        if not isinstance(sub.data, dict):
            loc = sub.locs.get(()) or Loc(shown, 0, 0)
            diags.append(Diagnostic(shown, loc.line, loc.col,
                                    f"stage file must hold a mapping for '{stage}'",
                                    "spec.stage-file", None))
            data[stage] = None
            loaded.broken.add(stage)
            continue
        loaded.files[rel] = target
        data[stage] = sub.data
        for k, v in sub.locs.items():
            loaded.locs[(*key, *k)] = v
        for k, v in sub.key_locs.items():
            loaded.key_locs[(*key, *k)] = v


def load_spec(path: Path | str, display: str | None = None) -> LoadedSpec:
    """Load, graft and validate a spec. Raises MlspecError with every problem found.

    The cyclic garbage collector is paused meanwhile: a load allocates many objects that all
    stay alive (nodes, positions, models), so each collection only walks a heap that keeps
    growing, which made a 5,000-step spec cost more than five 1,000-step ones (bench/scale.py).
    Reference counting still frees what the load drops; cycles wait for the next collection."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _load(Path(path), display)
    finally:
        if enabled:
            gc.enable()


def _load(path: Path, display: str | None) -> LoadedSpec:
    display = display or str(path)
    root = Path(os.path.realpath(path)).parent
    source = SpecSource(path=path.absolute(), root=root, display=display)
    if not os.path.isfile(path):
        raise MlspecError([Diagnostic.nowhere(f"no spec at {display}", "spec.missing-file",
                                              "run `mlspec init` to create one")])
    doc = read_yaml(path, display)
    source.files[path.name] = path.absolute()
    source.locs.update(doc.locs)
    source.key_locs.update(doc.key_locs)
    data = doc.data
    if data is None:
        raise MlspecError([Diagnostic.in_file(display, "the spec is empty", "spec.empty",
                                              "run `mlspec init` for a starter spec")])
    if not isinstance(data, dict):
        kind = "a sequence" if isinstance(data, list) else "a scalar"
        raise MlspecError([source.diag((), f"the spec must be a mapping, not {kind}",
                                       "spec.top-level", "start with 'version: 1' and 'project:'")])
    diags: list[Diagnostic] = []
    _graft_stage_files(data, source, diags)
    diags.extend(text_checks(data, source))
    diags.extend(version_check(data, doc, source))
    diags.extend(content_checks(data, source))

    spec, schema_diags = validate_model(data, source, doc)
    # a value already refused by a text rule (or a secret's value where its name belongs) is
    # reported once, by that rule
    seen = {(d.file, d.line, d.col) for d in diags}
    diags.extend(d for d in schema_diags if (d.file, d.line, d.col) not in seen)
    # cross-field checks run on whatever is valid, so every error is reported in one go
    seen = {(d.file, d.line, d.col) for d in diags}
    semantic_diags, graph = check_semantics(source, spec, data)
    diags.extend(d for d in semantic_diags if (d.file, d.line, d.col) not in seen)
    if diags or spec is None or graph is None:
        raise MlspecError(diags)
    spec_hash = hash_spec_files({rel: p.read_bytes() for rel, p in source.files.items()})
    return LoadedSpec(**vars(source), spec=spec, graph=graph, spec_hash=spec_hash)


def hash_spec_files(files: dict[str, bytes]) -> str:
    """The spec hash (hex): the spec and its stage files, by repository path, in path order."""
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode() + b"\0" + files[rel] + b"\0")
    return h.hexdigest()

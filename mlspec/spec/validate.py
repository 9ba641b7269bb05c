"""Schema validation (pydantic errors → located diagnostics) and cross-field checks."""

from __future__ import annotations

import difflib
import types
import typing
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from mlspec.errors import Diagnostic
from mlspec.spec.yamlsafe import Document, Key

if TYPE_CHECKING:
    from mlspec.graph import StepIO
    from mlspec.spec.loader import LoadedSpec
    from mlspec.spec.root import Spec

_TYPE_WORDS = {
    "string_type": "a string", "int_type": "an integer", "float_type": "a number",
    "bool_type": "true or false", "dict_type": "a mapping", "list_type": "a list",
    "model_type": "a mapping", "model_attributes_type": "a mapping", "int_from_float": "an integer",
    "literal_error": None, "none_required": "empty",
}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _unwrap(tp: Any) -> list[Any]:
    """The concrete alternatives of an annotation (Optional/Union/Annotated removed)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for a in typing.get_args(tp):
            out.extend(_unwrap(a))
        return out
    return [tp]


def _model_at(root: type[BaseModel], key: Key) -> type[BaseModel] | None:
    """The pydantic model class that validates the mapping at `key`, if any."""
    candidates: list[Any] = [root]
    for part in key:
        nxt: list[Any] = []
        for c in candidates:
            if isinstance(c, type) and issubclass(c, BaseModel):
                if isinstance(part, str) and part in c.model_fields:
                    nxt.extend(_unwrap(c.model_fields[part].annotation))
            else:
                origin = typing.get_origin(c)
                args = typing.get_args(c)
                if origin is dict and isinstance(part, str):
                    nxt.extend(_unwrap(args[1]))
                elif origin is list and isinstance(part, int):
                    nxt.extend(_unwrap(args[0]))
        candidates = nxt
    for c in candidates:
        if isinstance(c, type) and issubclass(c, BaseModel):
            return c
    return None


def _where(key: Key) -> str:
    if len(key) >= 3 and key[0] in ("data", "model") and key[1] == "steps":
        rest = ".".join(str(k) for k in key[3:])
        return f"step '{key[2]}'" + (f" ({rest})" if rest else "")
    if not key:
        return "the spec"
    return "'" + ".".join(str(k) for k in key) + "'"


def _trim(loc: tuple[Any, ...], data: Any) -> Key:
    """Drop pydantic's union-member and validator labels from an error location."""
    key: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            key.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            key.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and not key_is_label(part):
            key.append(part)  # a missing or unknown field
            break
    return tuple(key)


def key_is_label(part: str) -> bool:
    return "[" in part or part in ("str", "int", "float", "bool", "none") or part.startswith(
        ("function-", "literal[", "constrained-"))


def validate_model(data: dict[str, Any], loaded: LoadedSpec, doc: Document
                   ) -> tuple[Spec | None, list[Diagnostic]]:
    from mlspec.spec.root import Spec

    try:
        return Spec.model_validate(data), []
    except ValidationError as exc:
        errors = exc.errors(include_url=False)

    by_key: dict[tuple[Key, str], list[Any]] = {}
    for err in errors:
        key = _trim(err["loc"], data)
        by_key.setdefault((key, err["type"] if "." in err["type"] else "schema"), []).append(err)

    diags: list[Diagnostic] = []
    for (key, _group), errs in by_key.items():
        custom = [e for e in errs if "." in e["type"]]
        if custom:
            for e in custom:
                hint = (e.get("ctx") or {}).get("hint")
                msg = e["msg"]
                raw = doc.raw.get(key)
                if e["type"] == "spec.unquoted-version" and raw is not None:
                    msg = f"version {raw} is unquoted, so YAML reads the number {e['input']!r}"
                    hint = f'quote it: "{raw}"'
                diags.append(loaded.diag(key, msg, e["type"], hint))
            continue
        types_ = {e["type"] for e in errs}
        e = errs[0]
        field = str(key[-1]) if key else ""
        parent = key[:-1]
        if "extra_forbidden" in types_:
            model = _model_at(Spec, parent)
            allowed = sorted(model.model_fields) if model else []
            close = difflib.get_close_matches(field, allowed, n=1, cutoff=0.6)
            hint = (f"did you mean '{close[0]}'?" if close
                    else f"allowed here: {', '.join(allowed)}" if allowed else None)
            diags.append(loaded.diag(key, f"unknown field '{field}' in {_where(parent)}",
                                     "spec.unknown-field", hint, at_key=True))
        elif types_ == {"missing"}:
            diags.append(loaded.diag(parent, f"missing required field '{field}' in "
                                     f"{_where(parent)}", "spec.missing-field", None,
                                     at_key=True))
        elif types_ & set(_TYPE_WORDS):
            value = e.get("input")
            wanted = sorted({w for t in types_ if (w := _TYPE_WORDS.get(t))})
            if "literal_error" in types_:
                lit = next(x for x in errs if x["type"] == "literal_error")
                exp = lit.get("ctx", {}).get("expected", "")
                wanted = [f"one of {exp}"] if not wanted else [*wanted, exp]
            if "none_required" in types_ and len(wanted) > 1:
                wanted.remove("empty")
            if key == ("version",):
                msg = f"'version' must be 1, not {value!r}"
                hint = "this is version 1 of the mlspec format: write 'version: 1'"
            else:
                got = _kind(value)
                if "literal_error" in types_ and isinstance(value, str | int | float):
                    got = repr(value)
                msg = f"{_where(key)} must be {' or '.join(wanted)}, not {got}"
                raw = doc.raw.get(key)
                hint = f"quote it: \"{raw}\"" if raw is not None and "a string" in wanted else None
            diags.append(loaded.diag(key, msg, "spec.type", hint))
        else:
            msg = str(e["msg"])
            msg = msg[0].lower() + msg[1:] if msg else msg
            msg = msg.removeprefix("value error, ").replace("input should", "should")
            diags.append(loaded.diag(key, f"{_where(key)}: {msg}", "spec.value"))
    return None, diags


def _raw_metrics(data: dict[str, Any], loaded: LoadedSpec) -> set[str] | None:
    """Metric names declared in the raw data; None when the design section is unreadable."""
    if "design" in loaded.broken:
        return None
    design = data.get("design")
    if design is None:
        return set()
    if not isinstance(design, dict):
        return None
    metrics = design.get("metrics", {})
    if not isinstance(metrics, dict):
        return None
    return {k for k in metrics if isinstance(k, str)}


def _raw_io(raw: Any) -> StepIO:
    """The deps and outs of a step that failed validation: its entries that are valid paths."""
    from mlspec.graph import StepIO
    from mlspec.spec.common import normalise_path

    def paths(field: str) -> list[tuple[tuple[str | int, ...], str]]:
        items = raw.get(field) if isinstance(raw, dict) else None
        out: list[tuple[tuple[str | int, ...], str]] = []
        for i, item in enumerate(items if isinstance(items, list) else []):
            try:
                out.append(((field, i), normalise_path(item)))
            except Exception:  # not a string, or not a safe path: reported by the schema
                continue
        return out

    outs = paths("outs")
    metrics = raw.get("metrics") if isinstance(raw, dict) else None
    if isinstance(metrics, str):
        try:
            norm = normalise_path(metrics)
            if norm not in {o for _, o in outs}:
                outs.append((("metrics",), norm))
        except Exception:
            pass
    return StepIO(deps=tuple(paths("deps")), outs=tuple(outs))


def _steps(loaded: LoadedSpec, data: dict[str, Any]
           ) -> tuple[dict[str, StepIO], dict[str, str], list[Diagnostic]]:
    """Every step across stages, valid or not, as graph IO; plus duplicate-name errors."""
    from mlspec.graph import StepIO
    from mlspec.spec.step import Step

    ios: dict[str, StepIO] = {}
    stage_of: dict[str, str] = {}
    diags: list[Diagnostic] = []
    spec: Spec | None = loaded.spec
    for stage in ("data", "model"):
        if spec is not None:
            section = getattr(spec, stage)
            items: dict[str, Any] = dict(section.steps) if section is not None else {}
        else:
            raw = data.get(stage)
            steps = raw.get("steps") if isinstance(raw, dict) else None
            items = dict(steps) if isinstance(steps, dict) else {}
        for name, step in items.items():
            if not isinstance(name, str):
                continue
            if name in ios:
                diags.append(loaded.diag((stage, "steps", name),
                                         f"step '{name}' is already defined in "
                                         f"{stage_of[name]}.steps", "spec.duplicate-step",
                                         "step names are unique across stages", at_key=True))
                continue
            stage_of[name] = stage
            if isinstance(step, Step):
                ios[name] = StepIO.of(step)
            else:
                try:
                    ios[name] = StepIO.of(Step.model_validate(step))
                except ValidationError:
                    ios[name] = _raw_io(step)
    return ios, stage_of, diags


def check_semantics(loaded: LoadedSpec, data: dict[str, Any]) -> list[Diagnostic]:
    """Checks that span fields: step namespaces, gate metrics, the graph, files on disk.

    They run on a valid spec (loaded.spec) and also, as far as the raw data allows, on one that
    failed the schema, so that every error is reported at once.
    """
    from mlspec.graph import analyse, build_graph
    from mlspec.spec.gates import parse_gate

    spec: Spec | None = loaded.spec
    diags: list[Diagnostic] = []
    ios, stage_of, dup_diags = _steps(loaded, data)
    diags.extend(dup_diags)

    if spec is not None:
        metrics: set[str] | None = (set(spec.design.metrics) if spec.design else set())
        if "design" in loaded.broken:
            metrics = None
        gates = list(spec.model.gates) if spec.model else []
    else:
        metrics = _raw_metrics(data, loaded)
        model = data.get("model")
        raw_gates = model.get("gates") if isinstance(model, dict) else None
        gates = raw_gates if isinstance(raw_gates, list) else []
    if metrics is not None:
        for i, text in enumerate(gates):
            gate = parse_gate(text) if isinstance(text, str) else None
            if gate is not None and not isinstance(gate, str) and gate.metric not in metrics:
                close = difflib.get_close_matches(gate.metric, sorted(metrics), n=1)
                diags.append(loaded.diag(
                    ("model", "gates", i), f"gate on undefined metric '{gate.metric}'",
                    "spec.gate-metric",
                    f"did you mean '{close[0]}'?" if close else
                    "declare it under design.metrics"))

    project = spec.project if spec is not None else None
    requirements = project.requirements if project is not None else None
    if spec is None:
        raw_project = data.get("project")
        raw_req = raw_project.get("requirements") if isinstance(raw_project, dict) else None
        if isinstance(raw_req, str):
            from mlspec.spec.common import normalise_path

            try:
                requirements = normalise_path(raw_req)
            except Exception:
                requirements = None
    if requirements and not (loaded.root / requirements).is_file():
        diags.append(loaded.diag(("project", "requirements"),
                                 f"requirements file '{requirements}' does not exist",
                                 "spec.missing-file", None))
    check_missing = not ({"data", "model"} & loaded.broken)
    if spec is not None:
        diags.extend(_check_secrets(loaded))
        loaded.graph = build_graph(loaded)
        diags.extend(loaded.graph.diagnostics)
    else:
        diags.extend(analyse(loaded, ios, stage_of, check_missing=check_missing).diagnostics)
    return diags


def _check_secrets(loaded: LoadedSpec) -> list[Diagnostic]:
    spec: Spec = loaded.spec
    diags: list[Diagnostic] = []
    if (spec.inference and spec.inference.image.username is not None
            and "registry_password" not in spec.ci.secrets):
        diags.append(loaded.diag(("inference", "image", "username"),
                                 "a registry username needs ci.secrets.registry_password",
                                 "spec.secret-missing",
                                 "add `registry_password: <SECRET_NAME>` under ci.secrets"))
    return diags

"""Schema validation: pydantic errors → located diagnostics with "did you mean" hints.

Cross-field checks (gates, duplicate steps, the graph) live in mlspec.spec.semantics."""

from __future__ import annotations

import difflib
import types
import typing
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from mlspec.errors import Diagnostic
from mlspec.spec.root import Spec
from mlspec.spec.yamlsafe import Document, Key, Yaml

if TYPE_CHECKING:
    from mlspec.spec.source import SpecSource

_TYPE_WORDS = {
    "string_type": "a string", "int_type": "an integer", "float_type": "a number",
    "bool_type": "a boolean (true/false)", "dict_type": "a mapping", "list_type": "a list",
    "model_type": "a mapping", "model_attributes_type": "a mapping", "int_from_float": "an integer",
    "literal_error": None, "none_required": "empty",
}


def _kind(value: object) -> str:
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


def _homes(field: str, model: type[BaseModel], prefix: str = "", depth: int = 0) -> list[str]:
    """Where a field of that name exists in the spec: ['model.gates'], shallowest first."""
    found: list[str] = []
    if depth > 6:
        return found
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        if name == field:
            found.append(path)
        for tp in _unwrap(info.annotation):
            sub = path
            if typing.get_origin(tp) is dict:
                tp, sub = _unwrap(typing.get_args(tp)[1])[0], f"{path}.<name>"
            elif typing.get_origin(tp) is list:
                tp = _unwrap(typing.get_args(tp)[0])[0]
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                found.extend(_homes(field, tp, f"{sub}.", depth + 1))
    return sorted(set(found), key=lambda p: (p.count("."), p))


def _dotted(key: Key) -> str:
    """a.b[0].c: list indexes in brackets, as people write them."""
    out = ""
    for k in key:
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else str(k))
    return out


def where(key: Key) -> str:
    if len(key) >= 3 and key[0] in ("data", "model") and key[1] == "steps":
        rest = _dotted(key[3:])
        return f"step '{key[2]}'" + (f" ({rest})" if rest else "")
    if not key:
        return "the spec"
    return f"'{_dotted(key)}'"


def _alternatives(words: list[str]) -> str:
    """'a string', 'a number or true/false' … in a stable, readable order."""
    order = ["a mapping", "a list", "a string", "a number", "an integer", "a boolean (true/false)"]
    if "a number" in words and "an integer" in words:
        words = [w for w in words if w != "an integer"]
    words = sorted(words, key=lambda w: (order.index(w) if w in order else len(order), w))
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _trim(loc: tuple[str | int, ...], data: Yaml) -> Key:
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


def validate_model(data: dict[str, Yaml], loaded: SpecSource, doc: Document
                   ) -> tuple[Spec | None, list[Diagnostic]]:
    try:
        return Spec.model_validate(data), []
    except ValidationError as exc:
        errors = exc.errors(include_url=False)

    by_key: dict[tuple[Key, str], list[Any]] = {}
    on_key: set[Key] = set()  # errors about a mapping key itself (a step's name, a param's)
    for err in errors:
        key = _trim(err["loc"], data)
        if key == ("version",) and "version" in data:
            continue  # the version literal is checked on its source text (textrules)
        if "[key]" in err["loc"]:
            on_key.add(key)
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
                diags.append(loaded.diag(key, msg, e["type"], hint, at_key=key in on_key))
            continue
        types_ = {e["type"] for e in errs}
        e = errs[0]
        field = str(key[-1]) if key else ""
        parent = key[:-1]
        if "extra_forbidden" in types_:
            model = _model_at(Spec, parent)
            allowed = sorted(model.model_fields) if model else []
            close = difflib.get_close_matches(field, allowed, n=1, cutoff=0.6)
            homes = [h for h in _homes(field, Spec) if h != _dotted(key)][:2]
            hint = (f"did you mean '{close[0]}'?" if close
                    else f"'{field}' belongs elsewhere: did you mean {' or '.join(homes)}? "
                    "(check its indentation)" if homes
                    else f"allowed here: {', '.join(allowed)}" if allowed else None)
            diags.append(loaded.diag(key, f"unknown field '{field}' in {where(parent)}",
                                     "spec.unknown-field", hint, at_key=True))
        elif types_ == {"missing"}:
            diags.append(loaded.diag(parent, f"missing required field '{field}' in "
                                     f"{where(parent)}", "spec.missing-field", None,
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
            got = _kind(value)
            if "literal_error" in types_ and isinstance(value, str | int | float):
                got = repr(value)
            msg = f"{where(key)} must be {_alternatives(wanted)}, not {got}"
            raw = doc.raw.get(key)
            hint = f"quote it: \"{raw}\"" if raw is not None and "a string" in wanted else None
            diags.append(loaded.diag(key, msg, "spec.type", hint, at_key=key in on_key))
        else:
            msg = str(e["msg"])
            msg = msg[0].lower() + msg[1:] if msg else msg
            msg = msg.removeprefix("value error, ").replace("input should", "should")
            diags.append(loaded.diag(key, f"{where(key)}: {msg}", "spec.value",
                                     at_key=key in on_key))
    return None, diags

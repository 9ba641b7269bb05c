"""A hardened YAML 1.2 reader that keeps the position of every node.

The document is built from ruamel.yaml's *parse events*, never by its constructors: anchors,
aliases, tags, directives other than ``%YAML 1.2``, several documents, duplicate keys,
non-string keys and deep nesting are rejected as they stream past, so a billion-laughs file
costs a few events, not memory. Plain scalars are resolved with the YAML 1.2 core schema.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

from mlspec.errors import Diagnostic, MlspecError
from mlspec.spec.indentation import find_misindent

MAX_BYTES = 1_000_000  # a spec is hand-written; a megabyte is already absurd
MAX_DEPTH = 32
MAX_NODES = 100_000

Key = tuple[str | int, ...]
# what a spec document holds: plain data, no tags, keys are strings
Yaml: TypeAlias = "bool | int | float | str | list[Yaml] | dict[str, Yaml] | None"

_NULL = re.compile(r"^(?:~|null|Null|NULL)?$")
_BOOL_TRUE = re.compile(r"^(?:true|True|TRUE)$")
_BOOL_FALSE = re.compile(r"^(?:false|False|FALSE)$")
_INT = re.compile(r"^[-+]?[0-9]+$")
_INT_OCT = re.compile(r"^0o[0-7]+$")
_INT_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_NAN = re.compile(r"^\.(?:nan|NaN|NAN)$")
# control characters other than tab/newline/CR, and lone surrogates (not encodable as UTF-8)
_BAD_VALUE_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


@dataclass(frozen=True)
class Loc:
    file: str
    line: int
    col: int


@dataclass
class Document:
    """Plain Python data plus where each node (and each mapping key) came from."""

    data: Yaml
    file: str
    locs: dict[Key, Loc] = field(default_factory=dict)  # value positions
    key_locs: dict[Key, Loc] = field(default_factory=dict)  # positions of mapping keys
    raw: dict[Key, str] = field(default_factory=dict)  # plain-scalar source text


def resolve_plain(text: str) -> Yaml:
    """YAML 1.2 core schema resolution of a plain (unquoted) scalar."""
    if _NULL.match(text):
        return None
    if _BOOL_TRUE.match(text):
        return True
    if _BOOL_FALSE.match(text):
        return False
    if _INT.match(text):
        return int(text)
    if _INT_OCT.match(text):
        return int(text[2:], 8)
    if _INT_HEX.match(text):
        return int(text[2:], 16)
    if _FLOAT.match(text):
        return float(text)
    if _INF.match(text):
        return float("-inf") if text.startswith("-") else float("inf")
    if _NAN.match(text):
        return float("nan")
    return text


def _decode(raw: bytes, file: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise MlspecError(
            [Diagnostic(file, line, col, f"invalid UTF-8 byte 0x{raw[exc.start]:02x}",
                        "yaml.encoding", "save the spec as UTF-8")]
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    # raw characters the YAML reader would fold away or that display differently from what
    # they are: C0/C1 controls (but tab, LF, CR), NEL/LS/PS, and invisible format characters
    for m in re.finditer("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]|[^\x00-\x7f]",
                         text):
        char = m.group()
        if char >= "\xa0" and char not in "\u2028\u2029" and unicodedata.category(char) != "Cf":
            continue
        line = text.count("\n", 0, m.start()) + 1
        col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
        name = f"U+{ord(char):04X}" + (f" ({unicodedata.name(char)})"
                                        if unicodedata.name(char, "") else "")
        if char in "\x85\u2028\u2029":
            problem = (f"line break {name} in the spec", "spec.line-break",
                       "use plain newlines (LF) to end lines")
        elif char >= "\xa0":
            problem = (f"invisible format character {name} in the spec", "spec.invisible-char",
                       "remove it: it can make text display differently from what it is")
        else:
            problem = (f"control character {char!r} in the spec", "yaml.control-char",
                       "remove it; specs are plain text")
        raise MlspecError([Diagnostic(file, line, col, *problem)])
    return text


@dataclass(frozen=True)
class _Mark:
    line: int  # 0-based, like ruamel's marks
    column: int


def _directive(text: str, name: str, fallback: Any) -> Any:
    """Where a directive line is (ruamel marks the document start after it)."""
    m = re.search(rf"^{re.escape(name)}\b", text, re.M)
    if m is None:
        return fallback
    return _Mark(text.count("\n", 0, m.start()), 0)


def _short_tag(tag: str) -> str:
    """Show a tag as it was written: tag:yaml.org,2002:python/... -> !!python/..."""
    prefix = "tag:yaml.org,2002:"
    return "!!" + tag[len(prefix):] if tag.startswith(prefix) else tag


def read_yaml(path: Path, file: str) -> Document:
    """Read and parse one spec file; raise MlspecError with located diagnostics."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise MlspecError([Diagnostic.in_file(file, f"cannot read {file}: {exc.strerror}",
                                              "spec.missing-file")]) from None
    if size > MAX_BYTES:
        raise MlspecError([Diagnostic.in_file(
            file, f"spec file is {size:,} bytes; the limit is {MAX_BYTES:,}",
            "yaml.too-large", "a spec describes a pipeline; keep data out of it")])
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:  # permissions, a directory, an I/O error
        raise MlspecError([Diagnostic.in_file(file, f"cannot read {file}: {exc.strerror}",
                                              "spec.missing-file")]) from None
    if len(raw) > MAX_BYTES:  # grew since stat(), or a special file
        raise MlspecError([Diagnostic.in_file(file, f"spec file is over {MAX_BYTES:,} bytes",
                                              "yaml.too-large")])
    return parse_yaml(_decode(raw, file), file, plain_text=True)


def parse_yaml(text: str, file: str, plain_text: bool = False) -> Document:
    """Parse YAML text into a Document. plain_text=True (specs) also rejects control
    characters and lone surrogates written as escapes ("\\0", "\\ud800") inside values; other
    callers (the lock) may round-trip such values."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.events import (
        AliasEvent,
        DocumentStartEvent,
        MappingEndEvent,
        MappingStartEvent,
        ScalarEvent,
        SequenceEndEvent,
        SequenceStartEvent,
    )

    doc = Document(data=None, file=file)

    def at(mark: Any) -> Loc:
        return Loc(file, mark.line + 1, mark.column + 1)

    def fail(mark: Any, message: str, rule: str, hint: str | None = None) -> MlspecError:
        loc = at(mark)
        return MlspecError([Diagnostic(file, loc.line, loc.col, message, rule, hint)])

    # stack entries: [container, path, pending_key(for mappings) or None, is_mapping]
    stack: list[list[Any]] = []
    documents = 0
    nodes = 0

    def attach(value: Any, ev: Any, is_plain_text: str | None) -> Key | None:
        """Place a finished node in its parent; return its path (None for a mapping key)."""
        if not stack:
            doc.data = value
            doc.locs[()] = at(ev.start_mark)
            return ()
        top = stack[-1]
        container, path = top[0], top[1]
        if top[3]:  # mapping
            if top[2] is None:  # this node is a key
                if not isinstance(value, str):
                    kind = {bool: "a boolean", int: "an integer", float: "a number",
                            type(None): "null"}.get(type(value), type(value).__name__)
                    raise fail(ev.start_mark, f"mapping key must be a string, not {kind}",
                               "yaml.key-type",
                               f"quote it: \"{is_plain_text}\"" if is_plain_text else None)
                if value in container:
                    first = doc.key_locs[(*path, value)]
                    raise fail(ev.start_mark, f"duplicate key '{value}' (first defined at "
                               f"line {first.line})", "yaml.duplicate-key",
                               "remove one of them; YAML mappings have unique keys")
                top[2] = value
                doc.key_locs[(*path, value)] = at(ev.start_mark)
                return None
            key = top[2]
            container[key] = value
            top[2] = None
            p: Key = (*path, key)
        else:
            p = (*path, len(container))
            container.append(value)
        doc.locs[p] = at(ev.start_mark)
        if is_plain_text is not None:
            doc.raw[p] = is_plain_text
        return p

    def child_path() -> Key:
        if not stack:
            return ()
        top = stack[-1]
        if top[3]:
            return (*top[1], top[2]) if top[2] is not None else (*top[1], "<key>")
        return (*top[1], len(top[0]))

    yaml = YAML(typ="safe", pure=True)
    try:
        for ev in yaml.parse(text):
            if isinstance(ev, DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise fail(ev.start_mark, "a spec holds one YAML document, found a second",
                               "yaml.multiple-documents", "remove the '---' separator and "
                               "everything after it, or split into stage files")
                version = getattr(ev, "version", None)
                if version is not None and tuple(version) != (1, 2):
                    raise fail(_directive(text, "%YAML", ev.start_mark),
                               f"%YAML {'.'.join(map(str, version))} directive: "
                               "mlspec reads YAML 1.2 only", "yaml.version",
                               "remove the %YAML line")
                if getattr(ev, "tags", None):
                    raise fail(_directive(text, "%TAG", ev.start_mark),
                               "%TAG directives are not allowed", "yaml.tag",
                               "remove the %TAG line")
                continue
            if isinstance(ev, AliasEvent):
                raise fail(ev.start_mark, f"alias '*{ev.anchor}' is not allowed", "yaml.alias",
                           "write the value out; specs do not use anchors or aliases")
            if isinstance(ev, ScalarEvent | MappingStartEvent | SequenceStartEvent):
                nodes += 1
                if nodes > MAX_NODES:
                    raise fail(ev.start_mark, f"spec has more than {MAX_NODES:,} nodes",
                               "yaml.too-large", None)
                if ev.anchor is not None:
                    raise fail(ev.start_mark, f"anchor '&{ev.anchor}' is not allowed",
                               "yaml.anchor",
                               "write the value out; specs do not use anchors or aliases")
                if ev.tag is not None:
                    raise fail(ev.start_mark, f"tag '{_short_tag(ev.tag)}' is not allowed",
                               "yaml.tag",
                               "remove the tag; specs hold plain strings, numbers, lists and "
                               "mappings")
            if isinstance(ev, ScalarEvent):
                bad = _BAD_VALUE_CHARS.search(ev.value) if plain_text else None
                if bad:  # only escapes ("\0", "\ud800") get here: raw ones fail in _decode
                    char = bad.group()
                    what = "lone surrogate" if char >= "\ud800" else "control character"
                    raise fail(ev.start_mark, f"escaped {what} {char!r} in a value",
                               "yaml.control-char", "remove it; spec values are plain text")
                plain = ev.style is None
                try:
                    value = resolve_plain(ev.value) if plain else ev.value
                except ValueError:  # an integer beyond Python's digit limit
                    raise fail(ev.start_mark, f"number with {len(ev.value):,} digits",
                               "yaml.number", "quote it if it is text") from None
                attach(value, ev, ev.value if plain else None)
            elif isinstance(ev, MappingStartEvent | SequenceStartEvent):
                if len(stack) >= MAX_DEPTH:
                    raise fail(ev.start_mark, f"nesting deeper than {MAX_DEPTH} levels",
                               "yaml.too-deep", "a spec never needs this depth")
                is_map = isinstance(ev, MappingStartEvent)
                container: Any = {} if is_map else []
                path = child_path()
                if stack and stack[-1][3] and stack[-1][2] is None:
                    raise fail(ev.start_mark, "mapping key must be a string, not a "
                               + ("mapping" if is_map else "sequence"), "yaml.key-type", None)
                stack.append([container, path, None, is_map, ev])
            elif isinstance(ev, MappingEndEvent | SequenceEndEvent):
                container, _path, _k, _m, start = stack.pop()
                attach(container, start, None)
    except MlspecError:
        raise
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        hint = None
        if exc.context and exc.context_mark is not None and exc.problem_mark is not None:
            cm = exc.context_mark
            hint = f"{exc.context} at line {cm.line + 1}"
            for kind, opener in (("flow mapping", "{"), ("flow sequence", "[")):
                if kind in exc.context:
                    hint = (f"the {kind} '{opener}' opened at line {cm.line + 1}, column "
                            f"{cm.column + 1} is not closed, or lacks a ','")
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        if "'\\t'" in problem or "\t" in problem:
            problem = "tab character used for indentation"
            hint = "YAML indents with spaces only"
        elif (off := find_misindent(text, line)) is not None:
            line, col, problem, hint = off.line, off.col, off.message, off.hint
            raise MlspecError([Diagnostic(file, line, col, problem, "yaml.indentation",
                                          hint)]) from None
        elif "expected <block end>" in problem:
            problem = "this line does not fit the indentation of the lines above it"
            hint = (f"{hint}; " if hint else "") + "check its indentation against its siblings"
        raise MlspecError([Diagnostic(file, line, col, problem, "yaml.syntax", hint)]) from None
    except YAMLError as exc:  # reader errors without a mark
        raise MlspecError([Diagnostic.in_file(file, str(exc).splitlines()[0],
                                              "yaml.syntax")]) from None
    except RecursionError:
        raise MlspecError([Diagnostic.in_file(file, "nesting too deep",
                                              "yaml.too-deep")]) from None
    return doc

"""A fast reader for a lock exactly as `mlspec run` writes it (metric history reads hundreds).

The hardened YAML reader costs ~10 ms a lock; this one reads only the emitter's own shape
(block mappings by 2-space indent, flow values, double-quoted strings) and then proves it read
right: the data it found, written again by the lock's emitter, must give back the very same
bytes. Anything else (hand edits, another writer, a hostile file) returns None, and the caller
uses `Lock.parse`. So this reader never accepts a text with a meaning `Lock.parse` would not
give it.
"""

from __future__ import annotations

import re
from typing import Any

from mlspec.run.lock import HEADER, dump_yaml

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
_INT = re.compile(r"-?[0-9]+")
_WORDS: dict[str, Any] = {"null": None, "true": True, "false": False, ".nan": float("nan"),
                          ".inf": float("inf"), "-.inf": float("-inf")}


class _NotEmitted(Exception):
    pass


def parse_emitted(text: str) -> dict[str, Any] | None:
    """The lock's data when `text` is byte for byte what the emitter writes for it; else None."""
    if not text.startswith(HEADER) or not text.endswith("\n"):
        return None
    body = text[len(HEADER):]
    lines = body[:-1].split("\n")
    try:
        data, pos = _block(lines, 0, 0)
        if pos != len(lines):
            return None
    except (_NotEmitted, ValueError, IndexError, RecursionError):
        return None
    return data if dump_yaml(data) == body else None


def _block(lines: list[str], pos: int, indent: int) -> tuple[dict[str, Any], int]:
    pad = "  " * indent
    out: dict[str, Any] = {}
    while pos < len(lines) and lines[pos].startswith(pad) and not \
            lines[pos].startswith(pad + " "):
        key, i = _key(lines[pos], len(pad))
        rest = lines[pos][i:]
        pos += 1
        if rest == ":":
            item = pad + "  - "
            if pos < len(lines) and lines[pos].startswith(item):
                items = []
                while pos < len(lines) and lines[pos].startswith(item):
                    items.append(_whole(lines[pos][len(item):]))
                    pos += 1
                out[key] = items
            else:
                out[key], pos = _block(lines, pos, indent + 1)
        elif rest.startswith(": "):
            out[key] = _whole(rest[2:])
        else:
            raise _NotEmitted
    return out, pos


def _whole(s: str) -> Any:
    value, i = _flow(s, 0)
    if i != len(s):
        raise _NotEmitted
    return value


def _key(s: str, i: int) -> tuple[str, int]:
    if s[i:i + 1] == '"':
        return _string(s, i)
    m = _PLAIN.match(s, i)
    if m is None:
        raise _NotEmitted
    return m.group(), m.end()


def _string(s: str, i: int) -> tuple[str, int]:
    out: list[str] = []
    i += 1
    while True:
        ch = s[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch == "\\":
            nxt = s[i + 1]
            if nxt in '"\\':
                out.append(nxt)
                i += 2
            elif nxt == "u":
                out.append(chr(int(s[i + 2:i + 6], 16)))
                i += 6
            else:
                raise _NotEmitted
        else:
            out.append(ch)
            i += 1


def _flow(s: str, i: int) -> tuple[Any, int]:
    ch = s[i:i + 1]
    if ch == '"':
        return _string(s, i)
    if ch in "{[":
        close = "}" if ch == "{" else "]"
        items: list[Any] = []
        mapping: dict[str, Any] = {}
        i += 1
        while s[i] != close:
            if items or mapping:
                if s[i:i + 2] != ", ":
                    raise _NotEmitted
                i += 2
            if ch == "{":
                key, i = _key(s, i)
                if s[i:i + 2] != ": ":
                    raise _NotEmitted
                mapping[key], i = _flow(s, i + 2)
            else:
                value, i = _flow(s, i)
                items.append(value)
        return (mapping if ch == "{" else items), i + 1
    end = i
    while end < len(s) and s[end] not in ",}]":
        end += 1
    token = s[i:end]
    if token in _WORDS:
        return _WORDS[token], end
    if _INT.fullmatch(token):
        return int(token), end
    return float(token), end

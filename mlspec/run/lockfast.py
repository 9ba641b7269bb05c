"""A fast reader for a lock exactly as `mlspec run` writes it (metric history reads hundreds).

The hardened YAML reader costs ~10 ms a lock; this one reads only the emitter's own shape and
returns None for anything else (the caller then uses `Lock.parse`): the header line, block
mappings by exact 2-space indent with no empty block, one `key: value` or `- item` a line (no
multi-line scalar, no comment, anchor, tag or alias can appear), plain keys as the emitter
writes them (never a YAML keyword), no duplicate key, double-quoted strings holding only the
characters the emitter leaves as they are and its three escapes, and numbers and words in the
emitter's spelling (`repr` of a float, `.nan`, `null`...). Within that shape a text means what
this reader returns, as `Lock.parse` reads it (tests/gitops/test_lockfast.py checks both agree
on generated and mutated locks).
"""

from __future__ import annotations

import re
from typing import Any

from mlspec.run.lock import HEADER

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
_RESERVED = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}
_STRING = re.compile(r'"((?:[\x20\x21\x23-\x5b\x5d-\x7e\xa0-\ud7ff\ue000-\ufefe'
                     r'\uff00-\ufffd\U00010000-\U0010ffff]|\\["\\]|\\u[0-9a-f]{4})*)"')
_ESCAPE = re.compile(r'\\(["\\]|u[0-9a-f]{4})')
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:e[-+][0-9]+)?")
_WORDS: dict[str, Any] = {"null": None, "true": True, "false": False, ".nan": float("nan"),
                          ".inf": float("inf"), "-.inf": float("-inf")}


class _NotEmitted(Exception):
    pass


def parse_emitted(text: str) -> dict[str, Any] | None:
    """The lock's data when `text` has the emitter's shape; else None."""
    if not text.startswith(HEADER) or not text.endswith("\n"):
        return None
    lines = text[len(HEADER):-1].split("\n")
    try:
        data, pos = _block(lines, 0, 0)
    except (_NotEmitted, ValueError, IndexError, RecursionError):
        return None
    return data if pos == len(lines) else None


def _block(lines: list[str], pos: int, indent: int) -> tuple[dict[str, Any], int]:
    pad = "  " * indent
    out: dict[str, Any] = {}
    while pos < len(lines) and lines[pos].startswith(pad) and not \
            lines[pos].startswith(pad + " "):
        key, i = _key(lines[pos], len(pad))
        if key in out:
            raise _NotEmitted
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
                if not out[key]:
                    raise _NotEmitted  # `key:` alone is null in YAML; the emitter writes {}
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
    if m is None or m.group().lower() in _RESERVED:
        raise _NotEmitted
    return m.group(), m.end()


def _string(s: str, i: int) -> tuple[str, int]:
    m = _STRING.match(s, i)
    if m is None:
        raise _NotEmitted
    body = m.group(1)
    if "\\" in body:
        body = _ESCAPE.sub(_unescape, body)
    return body, m.end()


def _unescape(m: re.Match[str]) -> str:
    code = m.group(1)
    if code[0] != "u":
        return code
    o = int(code[1:], 16)
    if 0xD800 <= o <= 0xDFFF:
        raise _NotEmitted  # a lone surrogate is no character
    return chr(o)


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
                if key in mapping or s[i:i + 2] != ": ":
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
    if _FLOAT.fullmatch(token) and repr(float(token)) == token:
        return float(token), end
    raise _NotEmitted

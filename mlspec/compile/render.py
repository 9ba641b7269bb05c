"""Quoted YAML scalars that read the same under YAML 1.1 (GitLab) and YAML 1.2.

GitLab parses .gitlab-ci.yml as YAML 1.1, where plain `on`, `yes`, `010` or `1_000` are not
strings. Every string the GitLab renderer writes goes through `quote`: single quotes where the
text is plain printable (only `'` needs doubling), double quotes with escapes otherwise.
"""

from __future__ import annotations

import re

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}


# outside YAML's printable set, or a line break / BOM (NEL, LS, PS are breaks in YAML 1.1)
_UNPRINTABLE = re.compile(
    "[^\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")


def _printable(ch: str) -> bool:
    return _UNPRINTABLE.match(ch) is None


def quote(value: object) -> str:
    """A YAML flow scalar for value: bools and ints bare, every string quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if _UNPRINTABLE.search(text) is None:
        return "'" + text.replace("'", "''") + "'"
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif _printable(ch):
            out.append(ch)
        elif ord(ch) <= 0xFF:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def flow_list(values: list[object]) -> str:
    """A one-line flow sequence of quoted scalars: ['a', 'b']."""
    return "[" + ", ".join(quote(v) for v in values) + "]"


def quote_lines(value: object, indent: int) -> str:
    """Like `quote`, but a multi-line string stays readable: one double-quoted scalar whose
    source lines end in an escaped line break, continued at `indent` spaces (a leading space
    of a continued line is escaped, since YAML trims it)."""
    text = str(value)
    if "\n" not in text or isinstance(value, bool | int):
        return quote(value)
    pad = " " * indent
    lines = text.split("\n")
    out = []
    for i, line in enumerate(lines):
        body = quote(line + ("\n" if i < len(lines) - 1 else ""))
        if body.startswith("'"):  # printable: re-quote with double quotes
            body = '"' + "".join(_ESCAPES.get(ch, ch) for ch in line) + (
                "\\n" if i < len(lines) - 1 else "") + '"'
        inner = body[1:-1]
        if i > 0 and inner[:1] in (" ", "\t"):
            inner = "\\" + inner if inner[0] == " " else inner
        out.append(inner)
    return '"' + ("\\\n" + pad).join(out) + '"'

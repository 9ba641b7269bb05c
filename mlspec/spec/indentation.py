"""Find the line whose indentation breaks a YAML file's block structure.

The YAML parser notices a mis-indented key only where the structure can no longer be read,
often lines below, and says so in its own terms ("expected <block end>, but found '<block
mapping start>'"). This scan walks the lines in order, tracking the indentation of the open
block mappings, and names the first key that matches none of them: "this key is indented 3
spaces; its siblings use 2". It is only consulted when the parser has already failed.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_PLAIN_REST = r"(?:[^:#\n]|:(?![ \t]|$)|(?<![ \t])#)*?"
_KEY_PATTERN = (r"^(?:'(?:[^']|'')*'|\"(?:[^\"\\]|\\.)*\""
                r"|[^ \t#'\"\[\]{}&*!|>%@`,?:-]" + _PLAIN_REST
                + r"|[-?:][^ \t#]" + _PLAIN_REST + r")[ \t]*:(?:[ \t]|$)")


@functools.cache
def _key() -> re.Pattern[str]:
    """A key line's pattern, compiled on first use: only a spec that fails to parse needs it,
    and compiling it costs ~6 ms of every start."""
    return re.compile(_KEY_PATTERN)
_INDICATORS = ("- ", "? ", ": ")  # a sequence item, an explicit key, its value
_BLOCK_SCALAR = re.compile(r":\s*[|>][-+0-9]*\s*(?:#.*)?$")


@dataclass(frozen=True)
class Misindent:
    line: int  # 1-based
    col: int
    message: str
    hint: str


def _spaces(n: int) -> str:
    return f"{n} space" + ("" if n == 1 else "s")


def _flow_depth(text: str) -> int:
    """Net count of flow brackets opened on a line (outside quotes and comments)."""
    depth = 0
    quote = ""
    for i, c in enumerate(text):
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'" and (i == 0 or text[i - 1] in " [{,:"):
            quote = c
        elif c == "#" and (i == 0 or text[i - 1] == " "):
            break
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
    return depth


def _open_quote(value: str) -> str:
    """The quote a scalar value leaves open at the end of its line ('' when none)."""
    value = value.strip()
    if not value or value[0] not in "\"'":
        return ""
    q = value[0]
    rest = value[1:].replace("''", "") if q == "'" else re.sub(r"\\.", "", value[1:])
    return "" if q in rest else q


def _closes(line: str, q: str) -> bool:
    rest = line.replace("''", "") if q == "'" else re.sub(r"\\.", "", line)
    return q in rest


def find_misindent(text: str, upto: int) -> Misindent | None:
    """The first mis-indented key on lines 1..upto (1-based), if any."""
    levels: list[int] = []  # indentation of the open block mappings and sequences
    open_child = True  # the previous key has no value on its line: a deeper block may start
    block_scalar_at: int | None = None  # inside a | or > scalar whose key is at this indent
    flow = 0
    quote = ""  # inside a quoted scalar that spans lines
    for number, line in enumerate(text.split("\n")[:upto], start=1):
        body = line.lstrip(" ")
        indent = len(line) - len(body)
        if quote:
            if _closes(line, quote):
                quote = ""
            continue
        if block_scalar_at is not None:
            if not body.strip() or indent > block_scalar_at:
                continue
            block_scalar_at = None
        if not body.strip() or body.startswith("#") or body.startswith(("---", "...", "%")):
            continue
        if flow > 0:
            flow += _flow_depth(body)
            continue
        item = body.startswith(_INDICATORS) or body in ("-", "?", ":")
        content = body
        nested: list[int] = []  # "- - x": each further dash opens a sequence on this line
        while content.startswith(_INDICATORS) or content in ("-", "?", ":"):
            rest = content[2:].lstrip(" ")
            if content is not body:
                nested.append(indent + len(body) - len(content))
            content = rest
        is_key = bool(_key().match(content))
        if not (item or is_key):
            open_child = False  # a continuation line of a plain scalar, or a bare value
            continue
        if open_child and (not levels or indent > levels[-1]):
            levels.append(indent)
        elif levels and indent > levels[-1]:
            return Misindent(number, indent + 1, f"this key is indented {_spaces(indent)}; "
                             f"its siblings use {levels[-1]}",
                             "indent it like the keys above it: YAML nests by indentation")
        elif levels and indent < levels[-1]:
            inner = levels[-1]
            while levels and levels[-1] > indent:
                inner = levels.pop()
            if not levels or levels[-1] != indent:
                outer = f" (or {levels[-1]}, one level up)" if levels else ""
                return Misindent(number, indent + 1, f"this key is indented {_spaces(indent)}; "
                                 f"the keys above it use {inner}{outer}",
                                 "indent it like its siblings: YAML nests by indentation")
        levels.extend(nested)
        if item and is_key:  # "- name: x": the item's mapping starts after the dash
            levels.append(indent + len(body) - len(content))
        open_child = bool(re.search(r":\s*(?:#.*)?$", content)) or (item and not content)
        if _BLOCK_SCALAR.search(content):
            block_scalar_at = indent + (len(body) - len(content) if item else 0)
            open_child = False
        flow = max(_flow_depth(content), 0)
        m = _key().match(content)
        quote = _open_quote(content[m.end():] if m else content) if not flow else ""
    return None

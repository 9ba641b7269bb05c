"""Rules every string of a spec obeys, whatever its field: the text that reaches CI files,
shells and Dockerfiles is one clean line (or, for a command, clean lines).

- no control characters (Unicode Cc) and no invisible format characters (Unicode Cf: bidi
  overrides U+202A-U+202E and U+2066-U+2069, marks U+200E/U+200F, zero-width U+200B-U+200D,
  U+2060, U+FEFF, soft hyphen U+00AD, ...) anywhere, keys included;
- no line or paragraph separators (LF, CR, NEL U+0085, LS U+2028, PS U+2029) except in a
  `command` (step, serve, monitor, deploy), which may span lines separated by LF only and may
  hold tabs;
- no leading or trailing blank (space, tab) in any value but a command; a command's first line
  is not indented;
- no empty or blank-only string, except `ci.tag_prefix` (release tags may have no prefix);
- `version` is the integer literal 1 (not true, 1.0, 0x1, +1, 1e0 or "1").

These rules see values after YAML unescaping ("\u202e" written as an escape). Written raw in
the file, the same characters (and C1 controls) are refused by mlspec.spec.yamlsafe before
parsing, comments included: YAML would otherwise fold a raw NEL into a space unseen.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

from mlspec.errors import Diagnostic
from mlspec.spec.validate import where
from mlspec.spec.yamlsafe import Document, Key, Yaml

if TYPE_CHECKING:
    from mlspec.spec.source import SpecSource

LINE_BREAKS = "\n\r\x85\u2028\u2029"
BLANKS = " \t"
MAY_BE_EMPTY: frozenset[Key] = frozenset({("ci", "tag_prefix")})

class Problem(NamedTuple):
    rule: str
    message: str
    hint: str | None


def is_command(key: Key) -> bool:
    """Is the value at `key` a shell command (the only strings that may span lines)?"""
    if not key or key[-1] != "command":
        return False
    if len(key) == 4 and key[0] in ("data", "model") and key[1] == "steps":
        return True
    if len(key) == 4 and key[:2] == ("inference", "deploy"):
        return True
    return key in (("inference", "serve", "command"), ("inference", "monitor", "command"))


def _char(c: str) -> str:
    name = unicodedata.name(c, "")
    return f"U+{ord(c):04X}" + (f" ({name})" if name else "")


def string_problem(text: str, key: Key, is_key: bool = False) -> Problem | None:
    """The first rule `text` (the value at `key`, or that mapping key itself) breaks."""
    command = is_command(key) and not is_key
    what = f"the key '{text}'" if is_key and text.isprintable() else where(key)
    for c in text:
        if c in LINE_BREAKS:
            if command and c == "\n":
                continue
            if command:
                return Problem("spec.line-break", f"{_char(c)} in {what}",
                               "separate a command's lines with plain newlines (LF) only")
            return Problem("spec.line-break", f"line break {_char(c)} in {what}",
                           "this value must be one line; only a command may span lines")
        category = unicodedata.category(c)
        if category == "Cc":
            if command and c == "\t":
                continue
            return Problem("spec.control-char", f"control character {_char(c)} in {what}",
                           "remove it; spec values are plain text")
        if category == "Cf":
            return Problem("spec.invisible-char",
                           f"invisible format character {_char(c)} in {what}",
                           "remove it: it can make text display differently from what runs")
    if not text.strip(BLANKS + ("\n" if command else "")):
        if text or (key not in MAY_BE_EMPTY or is_key):
            return Problem("spec.empty-value", f"{what} is empty" if not text
                           else f"{what} holds only blanks",
                           "remove the empty entry" if key and isinstance(key[-1], int)
                           else "write a value")
        return None
    if command:
        if text[0] in BLANKS:
            return Problem("spec.command-indent", f"{what}: the command's first line is indented",
                           "start the command at its first character; indent only later lines")
        return None
    if text[0] in BLANKS or text[-1] in BLANKS:
        side = "leading" if text[0] in BLANKS else "trailing"
        return Problem("spec.blank", f"{side} blank in {what}: {text!r}",
                       "remove the spaces or tabs around the value")
    return None


def _strings(data: Yaml, key: Key = ()) -> Iterator[tuple[Key, str, bool]]:
    """Every string in raw spec data: (path, text, is a mapping key)."""
    if isinstance(data, str):
        yield key, data, False
    elif isinstance(data, dict):
        for k, v in data.items():
            yield (*key, k), k, True
            yield from _strings(v, (*key, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _strings(v, (*key, i))


def text_checks(data: Yaml, loaded: SpecSource) -> list[Diagnostic]:
    """One diagnostic per string that breaks a rule, located at the value (or the key)."""
    diags: list[Diagnostic] = []
    for key, text, is_key in _strings(data):
        problem = string_problem(text, key, is_key)
        if problem is not None:
            rule, message, hint = problem
            diags.append(loaded.diag(key, message, rule, hint, at_key=is_key))
    return diags


def version_check(data: dict[str, Yaml], doc: Document, loaded: SpecSource) -> list[Diagnostic]:
    """`version` is written `1`: a plain integer literal, no sign, base, exponent or quotes."""
    if "version" not in data:
        return []  # reported by the schema as a missing field
    value = data["version"]
    raw = doc.raw.get(("version",))
    if type(value) is int and raw == "1":
        return []
    shown = raw if raw is not None else repr(value)
    return [loaded.diag(("version",), f"'version' must be the integer 1, not {shown}",
                        "spec.version",
                        "this is version 1 of the mlspec format: write 'version: 1'")]

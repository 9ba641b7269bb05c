"""The one rendering layer every target uses: a jinja environment and the quoting of values.

A spec value reaches a generated file only through a function of this module:

- YAML: `quote` (always quoted; reads the same under YAML 1.1 and 1.2, for GitLab),
  `scalar` (plain when unambiguous, else double-quoted; GitHub), `text` (a multi-line value:
  a literal block scalar only when that is proven to read back as the exact value, else one
  double-quoted scalar), `line_list` (a newline-separated list such as `path:` of an
  artifact: refuses entries a line list cannot hold);
- shell: `shell_word` / `shell_words` (shlex.quote);
- Dockerfiles: `docker_json` (exec / JSON-array forms), `docker_path`, `dockerignore_line`
  (refuse what would change the instruction or become a pattern).

A refusal is an `UnsafeValue` (an MlspecError with rule `compile.unsafe-value`): validation
rejects such values first, so reaching it means a spec rule is missing, never bad output.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Iterable
from functools import cache
from typing import TYPE_CHECKING

from mlspec.errors import Diagnostic, MlspecError

if TYPE_CHECKING:
    import jinja2

Scalar = str | int | float | bool


class UnsafeValue(MlspecError):
    def __init__(self, value: str, where: str, why: str) -> None:
        super().__init__([Diagnostic("", 0, 0, f"cannot write {value!r} into {where}: {why}",
                                     "compile.unsafe-value",
                                     "remove line breaks, control characters and leading or "
                                     "trailing blanks from the value")])


# --- YAML ----------------------------------------------------------------------------------------

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}
# outside YAML's printable set, or a line break / BOM (NEL, LS, PS are breaks in YAML 1.1)
# (Both classes are spelled as what they match, not as the complement of YAML's printable set:
# a negated class reaching U+10FFFF costs ~8 ms to compile at every start. tests/
# test_render_classes.py checks every code point against the complement spelling.)
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n", ""}
# printable ASCII but # : * " '
_PLAIN = re.compile(r"^[A-Za-z0-9_$./][\x20!\x24-\x26\x28\x29\x2b-\x39\x3b-\x7e]*$")
_BREAKS = re.compile("[\r\x85\u2028\u2029]")


def _escape(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif _UNPRINTABLE.match(ch) is None:
            out.append(ch)
        elif ord(ch) <= 0xFF:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out)


def double_quoted(text: str) -> str:
    """A double-quoted YAML scalar (escapes every break and control character)."""
    return '"' + _escape(text) + '"'


def _number(value: int | float) -> str:
    import json

    return json.dumps(value)


def quote(value: Scalar) -> str:
    """A YAML flow scalar for value: bools and ints bare, every string quoted (single quotes
    where the text is plain printable, double quotes with escapes otherwise)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if _UNPRINTABLE.search(text) is None:
        return "'" + text.replace("'", "''") + "'"
    return double_quoted(text)


def flow_list(values: Iterable[Scalar]) -> str:
    """A one-line flow sequence of quoted scalars: ['a', 'b']."""
    return "[" + ", ".join(quote(v) for v in values) + "]"


def quote_lines(value: Scalar, indent: int) -> str:
    """Like `quote`, but a multi-line string stays readable: one double-quoted scalar whose
    source lines end in an escaped line break, continued at `indent` spaces (a leading blank
    of a continued line is escaped, since YAML trims it)."""
    text = str(value)
    if "\n" not in text or isinstance(value, bool | int):
        return quote(value)
    pad = " " * indent
    lines = text.split("\n")
    out = []
    for i, line in enumerate(lines):
        inner = _escape(line) + ("\\n" if i < len(lines) - 1 else "")
        if i > 0 and inner[:1] == " ":
            inner = "\\" + inner
        out.append(inner)
    return '"' + ("\\\n" + pad).join(out) + '"'


def scalar(value: Scalar) -> str:
    """A YAML scalar: plain when unambiguous (printable ASCII, no indicators, not a number or
    keyword under YAML 1.1 or 1.2), else double-quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(value)
    s = str(value)
    if (s.lower() in _RESERVED or not _PLAIN.fullmatch(s) or s != s.strip()
            or re.match(r"^[-+]?[0-9.]", s) or s.endswith(":") or ": " in s or " #" in s):
        return double_quoted(s)
    return s


def _block_safe(text: str) -> bool:
    """Does a literal block scalar read back as exactly text? Only printable characters and
    '\\n' breaks, no blank at a line end (YAML keeps it but editors and our tidy step do not),
    no tab or blank-only line, something on the first line."""
    if not text.strip("\n") or _UNPRINTABLE.search(text.replace("\n", "")) or _BREAKS.search(text):
        return False
    lines = text.split("\n")
    if text.endswith("\n"):
        lines = lines[:-1]
    return all(line == line.rstrip(" \t") and (line.strip() or not line) and "\t" not in line
               for line in lines) and lines[0] != ""


def text(value: str, indent: int) -> str:
    """A possibly multi-line string after `key:`: ` value` for one plain line, else a literal
    block (`|`, `|-` or `|+` so the final breaks read back exactly, and an explicit indentation
    indicator when the first line starts with a blank) whose lines are indented by `indent`
    spaces; a double-quoted scalar whenever a block cannot hold the value exactly."""
    if "\n" not in value:
        return " " + scalar(value)
    if not _block_safe(value):
        return " " + double_quoted(value)
    body = value.rstrip("\n")
    trailing = len(value) - len(body)
    chomp = "-" if trailing == 0 else ("" if trailing == 1 else "+")
    head = str(2) if body.startswith(" ") else ""
    pad = " " * indent
    lines = [pad + line if line else "" for line in value.split("\n")]
    if trailing:
        lines = lines[:-1]
    return f" |{head}{chomp}\n" + "\n".join(lines)


def line_list(values: Iterable[str], where: str) -> str:
    """Entries joined by '\\n' for an input that splits its value into lines (e.g. the `path`
    of upload-artifact, where `!` excludes and `#` comments): each entry must be a line."""
    entries = list(values)
    for v in entries:
        if not v or "\n" in v or _BREAKS.search(v) or _UNPRINTABLE.search(v):
            raise UnsafeValue(v, where, "an entry of a line list must be one printable line")
        if v != v.strip() or v[0] in "!#":
            raise UnsafeValue(v, where, "an entry of a line list cannot start with a blank, "
                              "'!' or '#', or end with a blank")
    return "\n".join(entries)


# --- shell ---------------------------------------------------------------------------------------


def shell_word(word: str) -> str:
    return shlex.quote(word)


def shell_words(words: Iterable[str]) -> str:
    return " ".join(shlex.quote(w) for w in words)


# --- Dockerfiles ---------------------------------------------------------------------------------

_DOCKER_PATH_BAD = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029$\\\"*?\[\]]")


def docker_json(argv: Iterable[str]) -> str:
    """A JSON array (exec form of CMD/RUN, COPY ["src", "dest"]); every element one line."""
    import json

    items = list(argv)
    for a in items:
        if _BREAKS.search(a) or "\n" in a:
            raise UnsafeValue(a, "a Dockerfile instruction", "it contains a line break")
    return json.dumps(items, ensure_ascii=False)


def docker_path(path: str) -> str:
    """A repository path as a Dockerfile instruction may hold it (then written through
    `docker_json`): no breaks or controls, no `$` or `\\` (variable substitution, escapes),
    no `"`, no glob characters, no leading/trailing blanks."""
    if not path or path != path.strip() or _DOCKER_PATH_BAD.search(path):
        raise UnsafeValue(path, "a Dockerfile", "it holds a character a Dockerfile would "
                          "interpret (line break, control, $, \\, \", *, ?, [ or ])")
    return path


def dockerignore_line(path: str) -> str:
    """A .dockerignore line matching exactly path: never a negation (!), comment (#), blank,
    or more than one line."""
    if (not path or path != path.strip() or path[0] in "!#" or "\n" in path
            or _BREAKS.search(path) or _UNPRINTABLE.search(path)):
        raise UnsafeValue(path, ".dockerignore", "it would not be one literal pattern line")
    return path


# --- jinja ---------------------------------------------------------------------------------------


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Jinja's compiled templates cached in the user's cache dir (saves ~25 ms per compile);
    None when that directory is not writable.

    An entry is named by the template's name, its source and the environment's options, so
    output never depends on the cache, and two mlspec versions (or checkouts) with different
    templates each keep theirs. (Jinja's own cache is named by the template's name alone: two
    versions evicted each other's entry on every run and compiled every time.)"""
    import jinja2

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "mlspec", "jinja")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return None
    if not os.access(path, os.W_OK):
        return None

    class BySource(jinja2.FileSystemBytecodeCache):
        def get_bucket(self, environment: jinja2.Environment, name: str,
                       filename: str | None, source: str) -> jinja2.bccache.Bucket:
            checksum = self.get_source_checksum(source)
            env = environment
            options = (env.trim_blocks, env.lstrip_blocks, env.keep_trailing_newline,
                       env.autoescape, env.block_start_string, env.variable_start_string)
            bucket = jinja2.bccache.Bucket(
                environment, self.get_cache_key(f"{name}\0{checksum}\0{options}", filename),
                checksum)
            self.load_bytecode(bucket)
            return bucket

    return BySource(path)


@cache
def environment() -> jinja2.Environment:
    """The jinja environment of every target (templates/<target>/…, shipped as
    mlspec.templates). jinja is imported here, on first use, not when mlspec starts."""
    from importlib.resources import files

    import jinja2

    root = files("mlspec.templates")

    def load(name: str) -> tuple[str, None, Callable[[], bool]]:
        return root.joinpath(*name.split("/")).read_text(encoding="utf-8"), None, lambda: True

    env = jinja2.Environment(loader=jinja2.FunctionLoader(load), bytecode_cache=_bytecode_cache(),
                             undefined=jinja2.StrictUndefined, autoescape=False,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["q"] = quote
    env.filters["qlist"] = flow_list
    env.filters["qb"] = quote_lines
    return env

"""Property tests: whatever the input, `mlspec validate` answers with its own diagnostics.

Arbitrary YAML documents, random text and bytes, and mutations of the valid iris spec are fed to
the loader in-process (for speed); a few go through the real console script as well. The only
acceptable results are success or MlspecError with located, ruled diagnostics: never another
exception, never a traceback.
"""

from __future__ import annotations

import copy
import os
import shutil
import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, mlspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlspec import api
from mlspec.errors import Diagnostic
from mlspec.spec.loader import load_spec
from mlspec.spec.yamlsafe import parse_yaml

# MLSPEC_HYPOTHESIS_EXAMPLES=5000 for a longer hunt
N = int(os.environ.get("MLSPEC_HYPOTHESIS_EXAMPLES", "300"))
SETTINGS = settings(max_examples=N, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("props") / "iris"
    shutil.copytree(EXAMPLES / "iris", dest, ignore=shutil.ignore_patterns(
        "data", "model", "metrics.json", "params.json", ".mlspec", "__pycache__"))
    return dest


def _iris_data() -> dict[str, Any]:
    data = parse_yaml((EXAMPLES / "iris" / "mlspec.yaml").read_text(), "mlspec.yaml").data
    data["model"] = parse_yaml((EXAMPLES / "iris" / "specs" / "model.yaml").read_text(),
                               "specs/model.yaml").data
    return data


IRIS = _iris_data()


def _check(repo: Path, text: str | bytes) -> None:
    spec = repo / "mlspec.yaml"
    if isinstance(text, bytes):
        spec.write_bytes(text)
    else:
        spec.write_text(text, encoding="utf-8", errors="surrogatepass")
    out = api.validate(spec)  # raises on anything but MlspecError / CheckFailed
    assert out.code in (0, 2), out
    if out.code == 0:  # what validates is safe to hand on: encodable text, no control chars
        dumped = load_spec(spec).spec.model_dump_json()
        dumped.encode("utf-8")
        assert "\\u0000" not in dumped
    if out.code == 2:
        assert out.diagnostics
        for d in out.diagnostics:
            assert isinstance(d, Diagnostic)
            assert d.rule and "." in d.rule and d.message
            # located, or (a file with no place in it: empty, too large) line 0, col 0
            assert (d.line >= 1 and d.col >= 1) or (d.line, d.col) == (0, 0), d
            assert d.file, d
            assert "Traceback" not in d.message and "validation error" not in d.message


scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
           | st.text(max_size=20)
           | st.sampled_from(["\ud800", "a\x00b", "\x1b[31m", "9" * 5000, "3.10", "~", ""]))
keys = st.sampled_from(["version", "project", "name", "python", "steps", "command", "deps",
                        "outs", "metrics", "gates", "design", "data", "model", "ci",
                        "inference", "params", "sweep", "image"]) | st.text(max_size=8)
documents = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4)
                         | st.dictionaries(keys, kids, max_size=5), max_leaves=25)


@SETTINGS
@given(documents)
def test_arbitrary_yaml_documents(repo: Path, doc: Any) -> None:
    _check(repo, yaml.safe_dump(doc, allow_unicode=True))


@SETTINGS
@given(st.text(alphabet=st.characters(codec="utf-8")
               | st.sampled_from(list(":-[]{}&*!|>'\"%@`#,\n\t ")), max_size=200))
def test_arbitrary_text(repo: Path, text: str) -> None:
    _check(repo, text)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_arbitrary_bytes(repo: Path, data: bytes) -> None:
    _check(repo, data)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths(v, (*prefix, i)))
    return out


PATHS = _paths(IRIS)[1:]


@st.composite
def mutated_specs(draw: st.DrawFn) -> dict[str, Any]:
    data = copy.deepcopy(IRIS)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS))
        parent: Any = data
        try:
            for part in path[:-1]:
                parent = parent[part]
            parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue
        action = draw(st.sampled_from(["delete", "replace", "rename", "extra", "typo"]))
        last = path[-1]
        if action == "delete":
            del parent[last]
        elif action == "replace":
            parent[last] = draw(documents)
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(keys)] = parent.pop(last)
        elif action == "extra" and isinstance(parent, dict):
            parent[draw(keys)] = draw(scalars)
        elif action == "typo" and isinstance(parent[last], str):
            s = parent[last]
            i = draw(st.integers(0, len(s)))
            parent[last] = s[:i] + draw(st.sampled_from(
                ["/", "..", "~", "${{ x }}", "$[[ y ]]", " ", "A", "", "\\", "ghp_" + "a" * 36])
            ) + s[i + 1:]
    return data


@SETTINGS
@given(mutated_specs())
def test_mutated_valid_specs(repo: Path, data: dict[str, Any]) -> None:
    _check(repo, yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2000), st.sampled_from([*string.printable, "", "\u00e9", "\t\t"]))
def test_text_edits_of_the_iris_spec(repo: Path, pos: int, insert: str) -> None:
    src = (EXAMPLES / "iris" / "mlspec.yaml").read_text()
    pos = min(pos, len(src))
    _check(repo, src[:pos] + insert + src[pos + 1:])


def test_iris_unmutated_is_valid(repo: Path) -> None:
    """The baseline the mutations start from is valid (other tests overwrite the file)."""
    shutil.copy(EXAMPLES / "iris" / "mlspec.yaml", repo / "mlspec.yaml")
    out = api.validate(repo / "mlspec.yaml")
    assert out.code == 0, out.diagnostics


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutated_specs() | documents)
def test_console_script_never_shows_a_traceback(repo: Path, doc: Any) -> None:
    (repo / "mlspec.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True))
    for fmt in ("text", "json"):
        r = mlspec("validate", "--format", fmt, cwd=repo)
        assert r.returncode in (0, 2), r.stderr
        assert "Traceback" not in r.stdout + r.stderr
        assert r.returncode == 0 or (r.stderr if fmt == "text" else r.stdout)



# --- spec-level text rules: every string field, every forbidden character -------------------

def _full_data() -> dict[str, Any]:
    """The iris spec with every optional string field filled in, all stages inline."""
    data = copy.deepcopy(IRIS)
    data["ci"].update(install="pip install mlspec", image="python:3.11-slim", tag_prefix="v")
    inference = data["inference"]
    inference["image"]["username"] = "bot"
    inference["deploy"]["staging"].update(url="https://example.com/iris", command="./deploy.sh")
    data["model"]["steps"]["train"]["resources"]["image"] = "python:3.11"
    return data


FULL = _full_data()


def _strings(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], bool]]:
    """(path, is a mapping key) of every string in the document."""
    out: list[tuple[tuple[Any, ...], bool]] = []
    if isinstance(node, str):
        out.append((prefix, False))
    elif isinstance(node, dict):
        for k, v in node.items():
            out.append(((*prefix, k), True))
            out.extend(_strings(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_strings(v, (*prefix, i)))
    return out


STRINGS = _strings(FULL)
VALUES = [p for p, is_key in STRINGS if not is_key]
KEYS = [p for p, is_key in STRINGS if is_key]
LINE_BREAKS = ["\n", "\r", "\x85", "\u2028", "\u2029"]
CONTROLS = ["\x00", "\x01", "\x07", "\x1b", "\x7f", "\x9b", "\t", "\x0b", "\x0c"]
FORMATS = ["\u200b", "\u200e", "\u200f", "\u202a", "\u202e", "\u2066", "\u2069", "\u2060",
           "\ufeff", "\u00ad", "\u061c"]
TEXT_RULES = {"spec.line-break", "spec.control-char", "spec.invisible-char", "spec.blank",
              "spec.command-indent", "yaml.control-char"}


def _is_command(path: tuple[Any, ...]) -> bool:
    from mlspec.spec.textrules import is_command

    return is_command(path)


def _set(data: dict[str, Any], path: tuple[Any, ...], value: str, is_key: bool) -> None:
    parent: Any = data
    for part in path[:-1]:
        parent = parent[part]
    if is_key:  # rename the key, keeping its place
        items = list(parent.items())
        parent.clear()
        parent.update({(value if k == path[-1] else k): v for k, v in items})
    else:
        parent[path[-1]] = value


def _dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=10**6)


def _line_of(data: dict[str, Any], path: tuple[Any, ...], is_key: bool) -> int:
    """The line a value (or key) is on: the same document with a harmless marker there."""
    marked = copy.deepcopy(data)
    _set(marked, path, "zmarkz", is_key)
    doc = parse_yaml(_dump(marked), "mlspec.yaml")
    key = (*path[:-1], "zmarkz") if is_key else path
    return (doc.key_locs if is_key else doc.locs)[key].line


@st.composite
def poisoned(draw: st.DrawFn) -> tuple[dict[str, Any], tuple[Any, ...], bool, str]:
    is_key = draw(st.booleans())
    path = draw(st.sampled_from(KEYS if is_key else VALUES))
    parent: Any = FULL
    for part in path[:-1]:
        parent = parent[part]
    old = path[-1] if is_key else parent[path[-1]]
    command = _is_command(path) and not is_key
    bad = [c for c in LINE_BREAKS + CONTROLS + FORMATS
           if not (command and c in ("\n", "\t"))]
    kind = draw(st.sampled_from(["inside", "lead", "trail"] if not command else
                                ["inside", "lead"]))
    if kind == "inside":
        char = draw(st.sampled_from(bad))
        i = draw(st.integers(0, len(old)))
        new = old[:i] + char + old[i:]
    elif kind == "lead":
        new = draw(st.sampled_from([" ", "\t", "  "])) + old
    else:
        new = old + draw(st.sampled_from([" ", "\t", " \t"]))
    data = copy.deepcopy(FULL)
    _set(data, path, new, is_key)
    return data, path, is_key, new


@SETTINGS
@given(poisoned())
def test_forbidden_characters_are_refused_where_they_are(
        repo: Path, case: tuple[dict[str, Any], tuple[Any, ...], bool, str]) -> None:
    """Any string field holding a control, format or line-break character, or blanks around
    it, is refused with a diagnostic on that value's line (never a crash, never accepted)."""
    data, path, is_key, new = case
    spec = repo / "mlspec.yaml"
    spec.write_text(_dump(data), encoding="utf-8")
    out = api.validate(spec)
    assert out.code == 2, (path, new)
    line = _line_of(FULL, path, is_key)  # the mutated value starts where the original did
    hits = [d for d in out.diagnostics if d.file == str(spec) and d.line == line]
    assert hits, (path, new, out.diagnostics)
    assert {d.rule for d in hits} & TEXT_RULES, (path, new, hits)


SAFE_TEXT = st.text(alphabet=st.characters(
    blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp", "Co", "Cn"),
    blacklist_characters="'\"\\$`"), min_size=1, max_size=15)


@SETTINGS
@given(st.sampled_from([p for p in VALUES if _is_command(p) or p == ("design", "hypothesis")]),
       SAFE_TEXT, st.booleans())
def test_allowed_text_passes(repo: Path, path: tuple[Any, ...], extra: str,
                             newline: bool) -> None:
    """Commands and free text accept any printable text in their middle; commands also accept
    LF-separated lines and tabs."""
    parent: Any = FULL
    for part in path[:-1]:
        parent = parent[part]
    old = parent[path[-1]]
    sep = "\n\t" if newline and _is_command(path) else " "
    data = copy.deepcopy(FULL)
    _set(data, path, old + sep + extra + "x", False)
    spec = repo / "mlspec.yaml"
    spec.write_text(_dump(data), encoding="utf-8")
    out = api.validate(spec)
    assert out.code == 0, (path, extra, out.diagnostics)


def test_full_spec_is_valid(repo: Path) -> None:
    spec = repo / "mlspec.yaml"
    spec.write_text(_dump(FULL), encoding="utf-8")
    out = api.validate(spec)
    assert out.code == 0, out.diagnostics


@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(poisoned())
def test_forbidden_characters_exit_2_without_traceback(
        repo: Path, case: tuple[dict[str, Any], tuple[Any, ...], bool, str]) -> None:
    (repo / "mlspec.yaml").write_text(_dump(case[0]), encoding="utf-8")
    r = mlspec("validate", cwd=repo)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert r.stderr.startswith("mlspec.yaml:"), r.stderr


@SETTINGS
@given(documents, st.integers(2, 4))
def test_indentation_scan_never_blames_valid_yaml(doc: Any, indent: int) -> None:
    """The mis-indentation scan is consulted only on a parse error; on valid block YAML (as
    PyYAML writes it) it must find nothing, or it would hide the real error."""
    from mlspec.spec.indentation import find_misindent

    text = yaml.safe_dump(doc, allow_unicode=True, default_flow_style=False, indent=indent,
                          width=10**6)
    assert find_misindent(text, text.count("\n") + 1) is None, text

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
            assert d.line >= 1 and d.col >= 1, d
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


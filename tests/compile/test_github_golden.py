"""Golden files of the github target: every spec under specs/ (and examples/iris) compiles to
exactly the workflows under expected/<name>/. Regenerate with `pytest --update-golden`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import EXAMPLES, mlspec

HERE = Path(__file__).resolve().parent
SPECS = {p.name: p for p in sorted((HERE / "specs").iterdir()) if (p / "mlspec.yaml").is_file()}
SPECS["iris"] = EXAMPLES / "iris"
WORKFLOWS = ".github/workflows"


def compile_github(name: str, dest: Path) -> dict[str, str]:
    """Copy a golden spec to dest (without generated files), compile it, return the output."""
    shutil.copytree(SPECS[name], dest, ignore=shutil.ignore_patterns(
        ".github", ".gitlab-ci.yml", "docker", ".dockerignore", "data", "model", "__pycache__"))
    res = mlspec("compile", "--target", "github", cwd=dest)
    assert res.returncode == 0, res.stderr
    return {p.relative_to(dest).as_posix(): p.read_text()
            for p in sorted((dest / WORKFLOWS).glob("*.yml"))}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_golden(name: str, tmp_path: Path, update_golden: bool) -> None:
    got = compile_github(name, tmp_path / name)
    expected_dir = HERE / "expected" / name
    if update_golden:
        shutil.rmtree(expected_dir / WORKFLOWS, ignore_errors=True)
        for rel, text in got.items():
            (expected_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (expected_dir / rel).write_text(text)
    want = {p.relative_to(expected_dir).as_posix(): p.read_text()
            for p in sorted((expected_dir / WORKFLOWS).glob("*.yml"))}
    assert want, f"no golden files for {name}: run pytest --update-golden"
    assert sorted(got) == sorted(want)
    for rel in want:
        assert got[rel] == want[rel], f"{name}/{rel} differs from its golden file"


def test_iris_example_is_up_to_date() -> None:
    """examples/iris commits its generated files; `mlspec compile --check` must pass there."""
    res = mlspec("compile", "--check", cwd=EXAMPLES / "iris")
    assert res.returncode == 0, res.stdout + res.stderr


def test_iris_example_matches_golden() -> None:
    expected = HERE / "expected" / "iris" / WORKFLOWS
    for path in sorted(expected.glob("*.yml")):
        assert (EXAMPLES / "iris" / WORKFLOWS / path.name).read_text() == path.read_text()

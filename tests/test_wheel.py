"""The built wheel works on its own: templates and the schema ship inside it.

The wheel is built from a copy of the source tree (so the checkout stays clean) and installed
without dependencies into a fresh venv that borrows this venv's site-packages for them (a .pth
line: a plain path, so this venv's editable mlspec is not picked up).
"""

from __future__ import annotations

import os
import subprocess
import sysconfig
import zipfile
from pathlib import Path

import pytest
from conftest import init_repo, venv_with_wheel

from mlspec.spec.schema import schema_text


@pytest.fixture(scope="module")
def wheel_env(mlspec_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    venv = venv_with_wheel(tmp_path_factory.mktemp("wheel") / "venv", mlspec_wheel,
                           Path(sysconfig.get_path("purelib")), "borrowed-deps.pth")
    return mlspec_wheel, venv


def _run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(venv / "bin" / "mlspec"), *args], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=120)


def test_wheel_contains_templates_and_schema(wheel_env: tuple[Path, Path]) -> None:
    wheel, _ = wheel_env
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("mlspec/cli.py", "mlspec/scaffold.py", "mlspec/py.typed",
                   "mlspec/schemas/mlspec.schema.json", "mlspec/templates/init/mlspec.yaml.j2",
                   "mlspec/templates/init/gitignore", "mlspec/templates/init/requirements.txt",
                   "mlspec/templates/init/src/prepare.py", "mlspec/templates/init/src/train.py",
                   "mlspec/templates/init/src/evaluate.py"):
        assert needed in names, needed
    assert not any(n.startswith(("tests/", "examples/", "bench/")) for n in names)


def test_installed_wheel_is_the_one_running(wheel_env: tuple[Path, Path], tmp_path: Path) -> None:
    _, venv = wheel_env
    code = "import mlspec; print(mlspec.__file__)"
    r = subprocess.run([str(venv / "bin" / "python"), "-c", code],
                       capture_output=True, text=True, cwd=tmp_path, check=True)
    assert r.stdout.startswith(str(venv)), r.stdout


def test_schema_from_the_wheel(wheel_env: tuple[Path, Path], tmp_path: Path) -> None:
    _, venv = wheel_env
    r = _run(venv, "schema", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == schema_text()


def test_init_from_the_wheel(wheel_env: tuple[Path, Path], tmp_path: Path) -> None:
    _, venv = wheel_env
    repo = init_repo(tmp_path / "fresh")
    r = _run(venv, "init", cwd=repo)
    assert r.returncode == 0, r.stderr
    for name in ("mlspec.yaml", "mlspec.schema.json", ".gitignore", "requirements.txt",
                 "src/prepare.py", "src/train.py", "src/evaluate.py"):
        assert (repo / name).is_file(), name
    r = _run(venv, "validate", cwd=repo)
    assert (r.returncode, r.stdout) == (0, "mlspec.yaml: ok (3 steps)\n"), r.stderr
    assert _run(venv, "init", cwd=repo).returncode == 2

"""mlspec without the `sklearn` extra: the core works, the built-in trainer and `mlspec serve`
of a pickled model say what to install (exit 2, no traceback).

The core wheel is built (`pip wheel --no-deps`) and installed into a fresh venv whose only
other packages are the core dependencies: the real installed distributions of this venv, found
by walking `mlspec-gitops`'s requirements without extras, linked into one directory the venv
reads through a .pth line. scikit-learn, numpy, scipy and joblib are really absent there.
"""

from __future__ import annotations

import os
import re
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
from conftest import git, init_repo, venv_with_wheel
from packaging.requirements import Requirement

pytestmark = pytest.mark.slow  # builds a wheel and a venv once: about 20 s, then 15 s of runs

EXTRA_ONLY = ("sklearn", "numpy", "scipy", "joblib")
HINT = "pip install 'mlspec-gitops[sklearn]'"


def core_closure() -> set[str]:
    """The distributions `pip install mlspec-gitops` (no extra) brings, as installed here."""
    seen: set[str] = set()
    todo = ["mlspec-gitops"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in metadata.requires(name) or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):  # no extra's deps
                todo.append(re.sub(r"[-_.]+", "-", req.name).lower())
    seen.discard("mlspec-gitops")
    return seen


def _link_deps(dest: Path) -> None:
    dest.mkdir()
    for name in sorted(core_closure()):
        dist = metadata.distribution(name)
        tops = {Path(str(f)).parts[0] for f in dist.files or []}
        for top in sorted(tops):
            src = Path(str(dist.locate_file(top)))
            if top in ("..", "bin") or not src.exists() or (dest / top).exists():
                continue
            (dest / top).symlink_to(src)


@pytest.fixture(scope="module")
def core_venv(mlspec_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("core")
    _link_deps(tmp / "deps")
    return venv_with_wheel(tmp / "venv", mlspec_wheel, tmp / "deps", "core-deps.pth")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def core(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / "mlspec"), *args], cwd=cwd, capture_output=True,
                          text=True, env=_env(), timeout=120)


def _repo(path: Path, spec: str) -> Path:
    init_repo(path)
    (path / "mlspec.yaml").write_text(spec)
    git("add", "-A", cwd=path)
    git("commit", "-q", "-m", "spec", cwd=path)
    return path


COMMAND_SPEC = """\
version: 1
project: {name: core}
model:
  steps:
    count:
      command: python -c "open('n.txt', 'w').write('3')"
      outs: [n.txt]
"""

ESTIMATOR_SPEC = """\
version: 1
project: {name: builtin}
model:
  steps:
    train:
      estimator: sklearn.linear_model.LogisticRegression
      dataset: {sklearn: iris}
      outs: [model/model.joblib]
      metrics: metrics.json
"""


def test_the_core_venv_really_lacks_the_extra(core_venv: Path, tmp_path: Path) -> None:
    for mod in EXTRA_ONLY:
        r = subprocess.run([str(core_venv / "bin" / "python"), "-c", f"import {mod}"],
                           capture_output=True, text=True, cwd=tmp_path, env=_env())
        assert r.returncode != 0, f"{mod} is importable in the core venv"
    r = subprocess.run([str(core_venv / "bin" / "python"), "-c",
                        "import mlspec, typer, pydantic, git, docker, jinja2; "
                        "print(mlspec.__file__)"],
                       capture_output=True, text=True, cwd=tmp_path, env=_env())
    assert r.returncode == 0 and r.stdout.startswith(str(core_venv)), r.stdout + r.stderr


def test_core_validates_compiles_and_runs_a_command_spec(core_venv: Path,
                                                         tmp_path: Path) -> None:
    repo = _repo(tmp_path / "r", COMMAND_SPEC)
    for args in (["validate"], ["compile"], ["run"], ["status"]):
        r = core(core_venv, *args, cwd=repo)
        assert r.returncode == 0, (args, r.stdout + r.stderr)
    assert (repo / "n.txt").read_text() == "3"
    assert (repo / "mlspec.lock").exists()
    workflow = (repo / ".github/workflows/mlspec-experiment.yml").read_text()
    assert "mlspec-gitops==" in workflow and "[sklearn]" not in workflow


@pytest.mark.parametrize("command", ["validate", "run"])
def test_an_estimator_step_says_to_install_the_extra(core_venv: Path, tmp_path: Path,
                                                     command: str) -> None:
    repo = _repo(tmp_path / "r", ESTIMATOR_SPEC)
    r = core(core_venv, command, cwd=repo)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert "the built-in estimator steps need scikit-learn" in r.stderr
    assert HINT in r.stderr and "(sklearn is not installed)" in r.stderr
    assert re.search(r"mlspec\.yaml:6:\d+: ", r.stderr), r.stderr  # at the step's estimator
    assert not (repo / "model").exists()


def test_compile_of_an_estimator_spec_installs_the_extra(core_venv: Path,
                                                         tmp_path: Path) -> None:
    repo = _repo(tmp_path / "r", ESTIMATOR_SPEC)
    r = core(core_venv, "compile", cwd=repo)
    assert r.returncode == 0, r.stdout + r.stderr
    workflow = (repo / ".github/workflows/mlspec-experiment.yml").read_text()
    assert "mlspec-gitops[sklearn]==" in workflow


def test_serve_of_a_joblib_model_says_to_install_the_extra(core_venv: Path,
                                                           tmp_path: Path) -> None:
    import joblib
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    joblib.dump(model, tmp_path / "model.joblib")
    r = core(core_venv, "serve", "model.joblib", "--allow-unlocked", "--port", "0",
             cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert "mlspec serve needs scikit-learn" in r.stderr and HINT in r.stderr

"""`mlspec init`: a starter that validates and runs, and that never overwrites anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import git, init_repo, mlspec, tool

from mlspec.scaffold import FILES, SHARED, project_name


def _listing(root: Path) -> list[tuple[str, int, int]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in dirnames + filenames:
            st = Path(dirpath, name).lstat()
            out.append((str(Path(dirpath, name).relative_to(root)), st.st_size, st.st_mtime_ns))
    return sorted(out)


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = init_repo(tmp_path_factory.mktemp("init") / "churn-model")
    r = mlspec("init", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert [ln.removeprefix("created ") for ln in r.stdout.splitlines()[:len(FILES)]] == list(FILES)
    return repo


def test_init_writes_a_spec_that_validates(scaffolded: Path) -> None:
    assert sorted(p.relative_to(scaffolded).as_posix() for p in scaffolded.rglob("*")
                  if p.is_file() and ".git" not in p.parts) == sorted(FILES)
    r = mlspec("validate", cwd=scaffolded)
    assert (r.returncode, r.stdout, r.stderr) == (0, "mlspec.yaml: ok (3 steps)\n", "")
    text = (scaffolded / "mlspec.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=mlspec.schema.json\n")
    assert "  name: churn-model\n" in text
    assert f'python: "{sys.version_info.major}.{sys.version_info.minor}"' in text
    r = mlspec("schema", cwd=scaffolded)
    assert (scaffolded / "mlspec.schema.json").read_text() == r.stdout


def test_init_spec_matches_its_schema(scaffolded: Path) -> None:
    checker = tool("check-jsonschema")
    r = subprocess.run([checker, "--schemafile", "mlspec.schema.json", "mlspec.yaml"],
                       cwd=scaffolded, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_init_scripts_run_and_pass_the_gates(scaffolded: Path, tmp_path: Path) -> None:
    """The starter scripts really train and evaluate (run by hand, as `mlspec run` would)."""
    work = tmp_path / "work"
    subprocess.run(["cp", "-a", str(scaffolded), str(work)], check=True)
    py = sys.executable
    for cmd in (["src/prepare.py", "--out", "data/dataset.csv", "--rows", "600"],
                ["src/train.py"], ["src/evaluate.py"]):
        r = subprocess.run([py, *cmd], cwd=work, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    metrics = json.loads((work / "metrics.json").read_text())
    assert set(metrics) == {"accuracy", "f1_macro"}
    assert metrics["f1_macro"] >= 0.80 and metrics["accuracy"] >= 0.80
    # what the scripts wrote is exactly what .gitignore keeps out of git
    git("add", "-A", cwd=work)
    tracked = set(git("ls-files", cwd=work).splitlines())
    assert tracked == set(FILES)


def test_init_then_mlspec_run(scaffolded: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    subprocess.run(["cp", "-a", str(scaffolded), str(work)], check=True)
    r = mlspec("run", cwd=work, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (work / "metrics.json").is_file()
    # everything the run wrote is ignored by the starter .gitignore, except the lock
    git("add", "-A", cwd=work)
    assert set(git("ls-files", cwd=work).splitlines()) == {*FILES, "mlspec.lock"}


def test_second_init_refuses_and_writes_nothing(scaffolded: Path) -> None:
    before = _listing(scaffolded)
    r = mlspec("init", cwd=scaffolded)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.count("[init.exists]") == len(FILES) - len(SHARED)
    assert "mlspec.yaml: mlspec.yaml already exists; init overwrites nothing" in r.stderr
    assert _listing(scaffolded) == before


def test_init_refuses_when_any_one_file_exists(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    (repo / "src").mkdir()
    (repo / "src" / "train.py").write_text("# mine\n")
    before = _listing(repo)
    r = mlspec("init", cwd=repo)
    assert r.returncode == 2
    assert r.stderr == (
        "src/train.py: src/train.py already exists; init overwrites nothing [init.exists]\n"
        "  hint: run init in a repository without an mlspec project, or move the file away\n"
        "1 error\n")
    assert _listing(repo) == before
    assert (repo / "src" / "train.py").read_text() == "# mine\n"


def test_init_into_a_new_directory(tmp_path: Path) -> None:
    r = mlspec("init", "My Project!", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "created My Project!/mlspec.yaml" in r.stdout
    assert "  name: my-project\n" in (tmp_path / "My Project!" / "mlspec.yaml").read_text()
    r = mlspec("validate", "-f", "My Project!/mlspec.yaml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def test_init_rejects_a_bad_name(tmp_path: Path) -> None:
    r = mlspec("init", "--name", "Not Valid", cwd=tmp_path)
    assert r.returncode == 2
    assert "[spec.name]" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_project_name() -> None:
    assert project_name(Path("/x/Churn_Model v2")) == "churn_model-v2"
    assert project_name(Path("/x/---")) == "ml-project"


def test_init_keeps_an_existing_gitignore_and_requirements(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    (repo / ".gitignore").write_text("__pycache__/\n/data/\n")
    (repo / "requirements.txt").write_text("scikit-learn==1.5.2\npandas\n")
    r = mlspec("init", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert (repo / ".gitignore").read_text() == "__pycache__/\n/data/\n"
    assert (repo / "requirements.txt").read_text() == "scikit-learn==1.5.2\npandas\n"
    assert "created .gitignore" not in r.stdout
    assert "kept .gitignore; add: /model/ /metrics.json /params.json /.mlspec/\n" in r.stdout
    assert "kept requirements.txt\n" in r.stdout
    assert mlspec("validate", cwd=repo).returncode == 0


def test_a_non_ascii_directory_is_transliterated_and_said(tmp_path: Path) -> None:
    """issue 12.9: `proyecto-ñandú` became `proyecto--and`, silently."""
    repo = init_repo(tmp_path / "proyecto-ñandú")
    r = mlspec("init", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert "  name: proyecto-nandu\n" in (repo / "mlspec.yaml").read_text()
    assert ("project name: proyecto-nandu (from the directory name 'proyecto-ñandú'; change it "
            "with --name)\n") in r.stdout
    assert "CI targets: github (ci.targets; change with --target github,gitlab)\n" in r.stdout
    assert "serving: none (add an inference section with --with-serving)\n" in r.stdout
    assert project_name(Path("/x/Ünïcödé  Prøject")) == "unicode-prject"
    assert project_name(Path("/x/données__2024")) == "donnees-2024"


def test_a_bad_name_gets_a_suggestion(tmp_path: Path) -> None:
    r = mlspec("init", "--name", "Mi Proyecto Ñandú", cwd=tmp_path)
    assert r.returncode == 2
    assert "e.g. --name mi-proyecto-nandu" in r.stderr
    r = mlspec("init", "--name", "mine", cwd=tmp_path)
    assert "project name: mine (given with --name)" in r.stdout


def test_init_with_gitlab_and_serving_compiles(tmp_path: Path) -> None:
    """issue 12.9: try GitLab and Docker without reading the spec reference."""
    repo = init_repo(tmp_path / "shop")
    git("remote", "add", "origin", "https://gitlab.com/Acme/shop.git", cwd=repo)
    r = mlspec("init", "--target", "gitlab,github", "--with-serving", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert "CI targets: gitlab, github" in r.stdout
    assert "serving: image registry.gitlab.com/acme/shop, deployed on tags v*" in r.stdout
    text = (repo / "mlspec.yaml").read_text()
    assert "  targets: [gitlab, github]\n" in text
    assert "  image: {name: registry.gitlab.com/acme/shop, base: " in text
    assert "# Add `inference:`" not in text
    # GitHub's job token cannot push to GitLab's registry: init names the secrets, and says so
    assert "  secrets: {registry_username: REGISTRY_USER, registry_password: REGISTRY_TOKEN}\n" \
        in text
    assert ("registry login: the github pipeline pushes to registry.gitlab.com with the CI "
            "secrets REGISTRY_USER and REGISTRY_TOKEN") in r.stdout
    r = mlspec("validate", cwd=repo)
    assert r.returncode == 0, r.stderr
    r = mlspec("compile", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert (repo / ".gitlab-ci.yml").is_file()
    assert (repo / ".github" / "workflows" / "mlspec-release.yml").is_file()
    assert any("serve" in p.name for p in (repo / "docker").iterdir())


def test_init_serving_without_a_remote_uses_a_placeholder(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "churn")
    r = mlspec("init", "--with-serving", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert "image ghcr.io/your-org/churn" in r.stdout
    assert mlspec("validate", cwd=repo).returncode == 0


def test_init_rejects_an_unknown_target(tmp_path: Path) -> None:
    r = mlspec("init", "--target", "github,jenkins", cwd=tmp_path)
    assert r.returncode == 2
    assert "unknown CI target 'jenkins'" in r.stderr and "github, gitlab" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_init_inside_a_project_refuses_and_names_the_spec_above(tmp_path: Path) -> None:
    """issue 12.1: following the old 'run mlspec init' hint from src/ scaffolded a second
    project; init now says which project this directory belongs to."""
    repo = init_repo(tmp_path / "repo")
    assert mlspec("init", cwd=repo).returncode == 0
    before = _listing(repo)
    r = mlspec("init", cwd=repo / "src")
    assert r.returncode == 2
    assert "is inside the project of ../mlspec.yaml" in r.stderr
    assert "mlspec init --nested" in r.stderr
    assert _listing(repo) == before
    (repo / "other").mkdir()
    r = mlspec("init", "--nested", cwd=repo / "other")
    assert r.returncode == 0, r.stderr
    assert (repo / "other" / "mlspec.yaml").is_file()

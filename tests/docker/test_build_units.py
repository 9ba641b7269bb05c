"""The parts of `mlspec build` that need no engine: git facts from a real repository, tags,
registries, credentials from the environment, the build record, and import laziness."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import copy_example, git

from mlspec.api import load
from mlspec.errors import MlspecError
from mlspec.image.build import (
    base_images,
    build_args,
    git_facts,
    image_tags,
    registry_auth,
    registry_of,
    web_url,
    write_record,
)


def test_git_facts_commit_dirty_version_and_source(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CI_COMMIT_TAG", "GITHUB_REF_TYPE", "GITHUB_REF_NAME", "GITHUB_REPOSITORY",
                "CI_PROJECT_URL"):
        monkeypatch.delenv(var, raising=False)
    repo = copy_example("iris", tmp_path / "iris")
    facts = git_facts(repo)
    assert facts is not None
    assert facts.commit == git("rev-parse", "HEAD", cwd=repo)
    assert not facts.dirty and facts.version is None and facts.source is None
    git("remote", "add", "origin", "https://x-token:ghp_secret@github.com/acme/iris.git", cwd=repo)
    git("tag", "v1.2.0", cwd=repo)
    git("tag", "v1.10.0", cwd=repo)
    git("tag", "nightly", cwd=repo)
    (repo / "src" / "train.py").write_text("# edited\n")
    facts = git_facts(repo)
    assert facts is not None
    assert facts.dirty and facts.version == "1.10.0"
    assert facts.source == "https://github.com/acme/iris"  # credentials never reach a label
    assert git_facts(tmp_path) is None  # not a repository


def test_ci_tag_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = copy_example("iris", tmp_path / "iris")
    monkeypatch.setenv("CI_COMMIT_TAG", "v2.0.0")
    facts = git_facts(repo)
    assert facts is not None and facts.version == "2.0.0"


@pytest.mark.parametrize(("url", "web"), [
    ("git@github.com:acme/iris.git", "https://github.com/acme/iris"),
    ("ssh://git@gitlab.com/acme/ml/iris.git", "https://gitlab.com/acme/ml/iris"),
    ("https://oauth2:glpat-xyz@gitlab.example.com/acme/iris", "https://gitlab.example.com/acme/iris"),
    ("/srv/git/iris.git", None),
])
def test_web_url(url: str, web: str | None) -> None:
    assert web_url(url) == web


def test_tags_and_registries() -> None:
    from mlspec.image.build import GitFacts

    facts = GitFacts("a" * 40, False, "1.2.0", None)
    assert image_tags("ghcr.io/acme/iris", facts, "1.2.0", ["rc", "other.io/x/y:z"]) == [
        f"ghcr.io/acme/iris:{'a' * 40}", "ghcr.io/acme/iris:1.2.0", "ghcr.io/acme/iris:rc",
        "other.io/x/y:z"]
    dirty = GitFacts("b" * 40, True, None, None)
    assert image_tags("r/i", dirty, None, []) == [f"r/i:{'b' * 40}-dirty"]
    with pytest.raises(MlspecError):
        image_tags("r/i", dirty, None, ["bad tag!"])
    assert registry_of("ghcr.io/acme/iris") == "ghcr.io"
    assert registry_of("127.0.0.1:5000/x/iris") == "127.0.0.1:5000"
    assert registry_of("localhost/iris") == "localhost"
    assert registry_of("acme/iris") == "docker.io"


def test_registry_credentials_from_the_named_variable(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    repo = copy_example("iris", tmp_path / "iris", commit=False)
    loaded = load(repo / "mlspec.yaml")  # ci.secrets.registry_password: REGISTRY_TOKEN
    for var in ("REGISTRY_TOKEN", "GITHUB_ACTOR", "CI_REGISTRY_USER"):
        monkeypatch.delenv(var, raising=False)
    assert registry_auth(loaded, "ghcr.io/acme/iris") is None
    monkeypatch.setenv("REGISTRY_TOKEN", "s3cret")
    with pytest.raises(MlspecError, match="no registry user"):
        registry_auth(loaded, "ghcr.io/acme/iris")
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    assert registry_auth(loaded, "ghcr.io/acme/iris") == {
        "username": "octocat", "password": "s3cret", "serveraddress": "ghcr.io"}
    spec = repo / "mlspec.yaml"
    spec.write_text(spec.read_text().replace("name: ghcr.io/acme/iris,",
                                             "name: ghcr.io/acme/iris, username: bot,"))
    auth = registry_auth(load(spec), "ghcr.io/acme/iris")
    assert auth is not None and auth["username"] == "bot"


def test_build_args_from_lock_and_metrics(tmp_path: Path) -> None:
    repo = copy_example("iris", tmp_path / "iris")
    (repo / "mlspec.lock").unlink(missing_ok=True)
    loaded = load(repo / "mlspec.yaml")
    facts = git_facts(repo)
    args = build_args(loaded, facts, None)
    assert args["MLSPEC_LOCK_HASH"] == "none" and args["MLSPEC_METRIC_F1_MACRO"] == "none"
    assert args["MLSPEC_SPEC_HASH"] == f"sha256:{loaded.spec_hash}"
    (repo / "metrics.json").write_text('{"f1_macro": 0.9555, "accuracy": 0.96}')
    assert build_args(loaded, facts, None)["MLSPEC_METRIC_F1_MACRO"] == "0.9555"
    lock = "steps:\n  evaluate:\n    metrics:\n      f1_macro: 0.97\nversion: 1\n"
    (repo / "mlspec.lock").write_text(lock)
    args = build_args(loaded, facts, "1.0.0")
    import hashlib

    assert args["MLSPEC_LOCK_HASH"] == "sha256:" + hashlib.sha256(lock.encode()).hexdigest()
    assert args["MLSPEC_METRIC_F1_MACRO"] == "0.97"  # the lock wins over the working file
    assert args["MLSPEC_VERSION"] == "1.0.0"


def test_base_images_skip_stage_names(tmp_path: Path) -> None:
    df = tmp_path / "Dockerfile"
    df.write_text("FROM python:3.11-slim AS deps\nRUN true\nFROM deps\n"
                  "FROM --platform=linux/amd64 debian:12@sha256:" + "d" * 64 + "\n")
    assert base_images(df) == ["python:3.11-slim", "debian:12@sha256:" + "d" * 64]


def test_build_record_keeps_the_other_image(tmp_path: Path) -> None:
    write_record(tmp_path, "train", {"id": "sha256:1"})
    write_record(tmp_path, "serve", {"id": "sha256:2", "digest": "sha256:3"})
    data = json.loads((tmp_path / ".mlspec" / "build.json").read_text())
    assert data == {"version": 1, "train": {"id": "sha256:1"},
                    "serve": {"id": "sha256:2", "digest": "sha256:3"}}


def test_compile_and_cli_do_not_import_docker_git_or_sklearn() -> None:
    code = ("import sys, mlspec.cli, mlspec.compile.targets.docker, mlspec.image.build\n"
            "import mlspec.image.serve\n"
            "bad = [m for m in ('docker', 'git', 'sklearn', 'jinja2') if m in sys.modules]\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == ""

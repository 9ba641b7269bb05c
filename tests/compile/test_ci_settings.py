"""ci.verify (what each flow re-executes), registry credentials (validate's located error, the
CI's own token on ghcr.io and the GitLab registry, mlspec build's env credentials) and the
repository-settings checklist (GitLab header and `mlspec compile`'s printout)."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import mlspec, tool
from hostile import BASE, compile_spec, github, gitlab, step

from mlspec.errors import MlspecError
from mlspec.image.build import registry_auth
from mlspec.spec.loader import load_spec


def spec_with(**ci: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE)
    spec["ci"].update(ci)
    return spec


# --- ci.verify ------------------------------------------------------------------------------

def test_default_experiment_verify_reexecutes_nothing_and_checks_the_committed_lock(
        tmp_path: Path) -> None:
    files = compile_spec(tmp_path, BASE)
    assert files is not None
    verify = github(files, "experiment")["jobs"]["verify"]
    runs = [s.get("run", "") for s in verify["steps"]]
    assert "git checkout HEAD -- mlspec.lock" in runs and "mlspec status --exit-code" in runs
    assert not any("mlspec run" in r for r in runs)
    downloads = {s["with"]["name"] for s in verify["steps"] if "download-artifact" in
                 s.get("uses", "")}
    assert downloads == {"mlspec-step-prep", "mlspec-step-train"}
    assert verify["timeout-minutes"] == 15
    gl = gitlab(files)["experiment:verify"]
    assert gl["script"] == ["git checkout HEAD -- mlspec.lock", "mlspec status --exit-code"]
    assert gl["image"] == "python:3.11" and "experiment:step-train" in gl["needs"]
    release = github(files, "release")["jobs"]["verify"]  # every release reproduces
    assert "mlspec run --verify" in [s.get("run") for s in release["steps"]]


def test_listed_steps_are_reexecuted_and_all_reruns_everything(tmp_path: Path) -> None:
    files = compile_spec(tmp_path / "list", spec_with(verify={"experiment": ["train"],
                                                               "release": ["train"]}))
    assert files is not None
    gl = gitlab(files)
    assert gl["experiment:verify"]["script"][-1] == "mlspec run --verify train --no-gates"
    assert gl["release:verify"]["script"][2:4] == ["mlspec run --verify train --no-gates",
                                                   "mlspec run"]
    files = compile_spec(tmp_path / "all", spec_with(verify={"experiment": "all"}))
    assert files is not None
    gl = gitlab(files)
    assert gl["experiment:verify"]["script"] == ["mlspec run --verify --no-gates"]
    assert gl["experiment:verify"]["needs"] == ["experiment:check"]


def test_verify_names_unknown_steps_with_a_located_error(tmp_path: Path) -> None:
    root = tmp_path / "p"
    compile_spec(root, spec_with(verify={"experiment": ["trian"]}))
    with pytest.raises(MlspecError) as err:
        load_spec(root / "mlspec.yaml")
    (d,) = [d for d in err.value.diagnostics if d.rule == "spec.verify-step"]
    assert "unknown step 'trian'" in d.message and d.hint == "did you mean 'train'?"
    assert d.line > 0


# --- credentials ----------------------------------------------------------------------------

@pytest.mark.parametrize(("targets", "image", "ok"), [
    (["github"], "ghcr.io/acme/b", True),
    (["gitlab"], "registry.gitlab.com/acme/b", True),
    (["github"], "docker.io/acme/b", False),
    (["gitlab"], "ghcr.io/acme/b", False),
    (["github", "gitlab"], "ghcr.io/acme/b", False),
    (["github"], "acme/b", False),
])
def test_a_push_without_credentials_is_a_located_error(tmp_path: Path, targets: list[str],
                                                        image: str, ok: bool) -> None:
    spec = copy.deepcopy(BASE)
    spec["ci"] = {"targets": targets}
    spec["inference"]["image"]["name"] = image
    compile_spec(tmp_path, spec)
    try:
        load_spec(tmp_path / "mlspec.yaml")
        diags = []
    except MlspecError as err:
        diags = [d for d in err.diagnostics if d.rule == "spec.registry-credentials"]
    assert (not diags) == ok, diags
    for d in diags:
        assert d.line > 0 and "ci.secrets" in (d.hint or "")
    spec["ci"]["secrets"] = {"registry_password": "REG_TOKEN"}
    compile_spec(tmp_path, spec)
    load_spec(tmp_path / "mlspec.yaml")  # a named secret: no error


def test_ghcr_login_from_the_job_token_on_github(tmp_path: Path) -> None:
    spec = copy.deepcopy(BASE)
    spec["ci"] = {"targets": ["github"]}
    files = compile_spec(tmp_path / "own", spec)
    assert files is not None
    deploy = github(files, "release")["jobs"]["deploy-staging"]
    login = step(deploy, "Log in to ghcr.io")
    assert login["env"] == {"REGISTRY_USER": "${{ github.actor }}",
                            "REGISTRY_PASSWORD": "${{ github.token }}"}
    assert "--password-stdin" in login["run"] and "$REGISTRY_PASSWORD" in login["run"]
    assert deploy["permissions"]["packages"] == "write"
    names = [s["name"] for s in deploy["steps"]]
    assert names.index("Log in to ghcr.io") < names.index("mlspec build serve --push")
    files = compile_spec(tmp_path / "named", BASE)  # a named secret: no login with the token
    assert files is not None
    deploy = github(files, "release")["jobs"]["deploy-staging"]
    assert "Log in to ghcr.io" not in [s["name"] for s in deploy["steps"]]


def test_gitlab_pushes_to_its_own_registry_with_the_job_token(tmp_path: Path) -> None:
    files = compile_spec(tmp_path, BASE)
    assert files is not None
    deploy = gitlab(files)["release:deploy-staging"]
    login = [line for line in deploy["script"] if "CI_REGISTRY" in line]
    assert login == ['if [ "${IMAGE%%/*}" = "${CI_REGISTRY:-}" ]; then export '
                     'MLSPEC_REGISTRY_USER="$CI_REGISTRY_USER" '
                     'MLSPEC_REGISTRY_PASSWORD="$CI_REGISTRY_PASSWORD"; fi']
    assert deploy["script"].index(login[0]) < next(
        i for i, line in enumerate(deploy["script"]) if "mlspec build" in line)
    sh = tool("shellcheck")
    res = subprocess.run([sh, "-s", "sh", "-"], input=login[0] + "\n", capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stdout


def test_build_takes_credentials_from_the_mlspec_variables(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compile_spec(tmp_path, BASE)
    loaded = load_spec(tmp_path / "mlspec.yaml")
    for var in ("REGISTRY_TOKEN", "GITHUB_ACTOR", "CI_REGISTRY_USER", "MLSPEC_REGISTRY_USER",
                "MLSPEC_REGISTRY_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    assert registry_auth(loaded, "registry.gitlab.com/acme/b") is None
    monkeypatch.setenv("MLSPEC_REGISTRY_USER", "gitlab-ci-token")
    monkeypatch.setenv("MLSPEC_REGISTRY_PASSWORD", "job-token")
    monkeypatch.setenv("REGISTRY_TOKEN", "other")
    assert registry_auth(loaded, "registry.gitlab.com/acme/b") == {
        "username": "gitlab-ci-token", "password": "job-token",
        "serveraddress": "registry.gitlab.com"}


def test_build_reads_the_named_username_secret(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    compile_spec(tmp_path, spec_with(secrets={"registry_password": "REG_PW",
                                              "registry_username": "REG_USER"}))
    loaded = load_spec(tmp_path / "mlspec.yaml")
    for var in ("GITHUB_ACTOR", "CI_REGISTRY_USER", "MLSPEC_REGISTRY_USER",
                "MLSPEC_REGISTRY_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("REG_PW", "pw")
    monkeypatch.setenv("REG_USER", "robot")
    assert registry_auth(loaded, "ghcr.io/acme/b") == {
        "username": "robot", "password": "pw", "serveraddress": "ghcr.io"}


# --- settings checklist ---------------------------------------------------------------------

def test_compile_prints_the_settings_once_after_writing_new_files(tmp_path: Path) -> None:
    spec = copy.deepcopy(BASE)
    spec["inference"]["deploy"]["production"] = {"when": "tag:v*", "approval": True}
    compile_spec(tmp_path, spec)
    first = mlspec("compile", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "gitlab needs these repository settings:" in first.stdout
    assert "Protect the tags v* (Settings > Repository > Protected tags)" in first.stdout
    assert "Protect the environment 'production' with required approvals" in first.stdout
    assert "MLSPEC_SCHEDULE=refresh" in first.stdout
    assert "github needs these repository settings:" in first.stdout
    header = (tmp_path / ".gitlab-ci.yml").read_text()
    for line in first.stdout.split("gitlab needs these repository settings:\n")[1].splitlines():
        if not line.startswith("  - "):
            break
        assert f"#   - {line[4:]}\n" in header  # one text: the header and the printout
    again = mlspec("compile", cwd=tmp_path)
    assert again.returncode == 0 and "repository settings" not in again.stdout
    check = mlspec("compile", "--check", cwd=tmp_path)
    assert check.returncode == 0 and "repository settings" not in check.stdout
    (tmp_path / ".gitlab-ci.yml").unlink()
    check = mlspec("compile", "--check", cwd=tmp_path)
    assert check.returncode == 1 and "repository settings" not in check.stdout + check.stderr


def test_github_pip_cache_keyed_by_requirements_and_the_workflow(tmp_path: Path) -> None:
    files = compile_spec(tmp_path, BASE)
    assert files is not None
    for flow in ("experiment", "release", "schedule"):
        for job in github(files, flow)["jobs"].values():
            for s in job["steps"]:
                if "setup-python" not in s.get("uses", ""):
                    continue
                if flow == "experiment":
                    assert s["with"]["cache"] == "pip"
                    assert s["with"]["cache-dependency-path"] == (
                        "requirements.txt\n.github/workflows/mlspec-experiment.yml\n")
                else:  # no cache where a release is built
                    assert "cache" not in s["with"]

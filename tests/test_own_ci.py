"""mlspec's own workflow (.github/workflows/ci.yml) passes the checkers it holds users to."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from conftest import BIN, REPO, need, tool

WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"
# shared/ sits beside the checkout in CI; helpers' worktrees find it at /work/shared
PINS = [p for p in (REPO.parent / "shared" / "actions-pins.json",
                    Path("/work/shared/actions-pins.json")) if p.is_file()]


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env)


def test_zizmor_auditor_finds_nothing() -> None:
    r = _run(tool("zizmor"), "--offline", "--persona", "auditor", str(WORKFLOW))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "No findings" in r.stdout + r.stderr


def test_actionlint_finds_nothing() -> None:
    tool("shellcheck")  # actionlint checks run: scripts with shellcheck when it is on PATH
    r = _run(tool("actionlint"), str(WORKFLOW))
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_vendored_github_workflows_schema() -> None:
    r = _run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
             str(WORKFLOW))
    assert r.returncode == 0, r.stdout + r.stderr


def test_actions_pinned_by_sha_with_version_comment() -> None:
    text = WORKFLOW.read_text()
    uses = re.findall(r"uses: (\S+)@(\S+)(?: # (\S+))?", text)
    assert uses
    need(bool(PINS), "shared/actions-pins.json is not beside the repository")
    pins = json.loads(PINS[0].read_text())
    for action, ref, version in uses:
        assert action in pins, f"{action} is not in actions-pins.json"
        assert re.fullmatch(r"[0-9a-f]{40}", ref), action
        assert version, f"{action} has no version comment"
        assert (ref, version) == (pins[action]["sha"], pins[action]["version"]), action
    assert "\npermissions: {}\n" in text
    assert text.count("persist-credentials: false") == text.count("actions/checkout@")

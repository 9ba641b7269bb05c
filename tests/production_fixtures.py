"""What the production-history tests share (tests/monitor, tests/remote): a released project
whose monitor measures `LIVE_ACC`, two monitor runs, and what metrics --history and report must
show of them."""

from __future__ import annotations

import json
import time
from pathlib import Path

from conftest import git, init_repo, mlspec

from mlspec import prodrecord

SPEC = """\
version: 1
project: {name: prod-demo}
design:
  hypothesis: a constant is enough
  metrics:
    accuracy: {goal: maximize, primary: true}
model:
  steps:
    train:
      command: python train.py
      outs: [model/model.bin]
      metrics: metrics.json
inference:
  image: {name: ghcr.io/acme/prod}
  monitor:
    schedule: "0 6 * * *"
    command: python live.py
    metrics: monitor/metrics.json
    gates: ["accuracy >= baseline - 0.1"]
"""
TRAIN = """\
import json, os
os.makedirs("model", exist_ok=True)
open("model/model.bin", "w").write("m")
json.dump({"accuracy": 0.9}, open("metrics.json", "w"))
"""
TRAIN_095 = TRAIN.replace("0.9", "0.95")
LIVE = """\
import json, os
os.makedirs("monitor", exist_ok=True)
json.dump({"accuracy": float(os.environ["LIVE_ACC"]), "n_live": 100},
          open("monitor/metrics.json", "w"))
"""


def released(tmp_path: Path) -> Path:
    """A project whose release v1.0.0 has accuracy 0.9 offline."""
    repo = init_repo(tmp_path / "p")
    (repo / "mlspec.yaml").write_text(SPEC)
    (repo / "train.py").write_text(TRAIN)
    (repo / "live.py").write_text(LIVE)
    r = mlspec("run", cwd=repo)
    assert r.returncode == 0, r.stderr
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "trained", cwd=repo)
    git("tag", "-a", "v1.0.0", "-m", "release 1.0.0", cwd=repo)
    return repo


def two_runs(repo: Path, env: dict[str, str]) -> list[str]:
    """Two monitor runs (0.85 passes, 0.7 fails the gate); the tags they recorded."""
    tags = []
    for acc, code in (("0.85", 0), ("0.7", 1)):
        r = mlspec("monitor", "--json", cwd=repo, env={**env, "LIVE_ACC": acc})
        assert r.returncode == code, r.stdout + r.stderr
        tag = json.loads(r.stdout)["record"]
        assert prodrecord.TAG.fullmatch(tag) and f"as {tag}" in r.stderr, r.stderr
        tags.append(tag)
        time.sleep(1.05)  # tags sort by the second of the run
    return tags


def check_shown(repo: Path, env: dict[str, str]) -> None:
    r = mlspec("metrics", "--history", cwd=repo, env=env)
    assert r.returncode == 0, r.stderr
    assert "production: v1.0.0 (the newest release), 2 monitor run(s)" in r.stdout, r.stdout
    assert "accuracy  0.9000   0.7000               -0.2000" in r.stdout, r.stdout
    lines = [ln for ln in r.stdout.splitlines() if "pass " in ln or "FAIL " in ln]
    assert [ln.split()[2:5] for ln in lines] == [["1", "pass", "0.8500"],
                                                 ["1", "FAIL", "0.7000"]], r.stdout
    data = json.loads(mlspec("metrics", "--history", "--format", "json", cwd=repo,
                             env=env).stdout)["production"]
    assert data["release"] == "v1.0.0" and data["offline"] == {"accuracy": 0.9}
    assert [p["metrics"] for p in data["points"]] == [{"accuracy": 0.85, "n_live": 100},
                                                      {"accuracy": 0.7, "n_live": 100}]
    assert data["points"][1]["gates"] == [{"gate": "accuracy >= baseline - 0.1",
                                           "verdict": "fail"}]
    report = mlspec("report", cwd=repo, env=env)
    assert report.returncode == 0, report.stderr
    section = report.stdout.split("### Production", 1)[1].split("### Gates", 1)[0]
    assert "Deployed release `v1.0.0` (the newest release): 2 monitor run(s)" in section
    assert "| accuracy | 0.9000 | 0.7000 | -0.2000 |" in section, section
    assert "  bar [0.85, 0.7]\n  line [0.9, 0.9]" in section, section

"""`mlspec monitor` and `mlspec profile` never write, unlink or read through a committed
symlink out of the repository (spec.unsafe-path), and a metrics or output path that is a
directory, or under a file, is a diagnostic (exit 2), never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import init_repo, mlspec

pytest.importorskip("numpy")

SPEC = """\
version: 1
project: {name: paths}
design:
  hypothesis: h
  metrics:
    accuracy: {goal: maximize, primary: true}
model:
  steps:
    train:
      command: "true"
inference:
  image: {name: ghcr.io/acme/p}
  monitor:
    schedule: "0 6 * * *"
    command: "echo '{\\"acc\\": 1}' > monitor/metrics.json || true"
MONITOR"""


def _repo(tmp_path: Path, monitor: str = "    metrics: monitor/metrics.json\n") -> Path:
    repo = init_repo(tmp_path / "r")
    (repo / "mlspec.yaml").write_text(SPEC.replace("MONITOR", monitor))
    return repo


def test_metrics_through_a_symlink_out_of_the_repo_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "metrics.json").write_text("precious\n")
    repo = _repo(tmp_path)
    (repo / "monitor").symlink_to(outside)
    r = mlspec("monitor", cwd=repo)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stdout + r.stderr
    assert "[spec.unsafe-path]" in r.stderr and "mlspec.yaml:" in r.stderr
    assert (outside / "metrics.json").read_text() == "precious\n"


def test_drift_paths_through_a_symlink_out_of_the_repo_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "p.json").write_text("{}")
    (outside / "l.jsonl").write_text("{}\n")
    repo = _repo(tmp_path, "    drift: {reference: ext/p.json, live: logs/l.jsonl}\n"
                           "    metrics: monitor/metrics.json\n")
    (repo / "ext").symlink_to(outside)
    (repo / "logs").symlink_to(outside)
    r = mlspec("monitor", cwd=repo)
    assert r.returncode == 2 and "[spec.unsafe-path]" in r.stderr, r.stdout + r.stderr
    assert "ext/p.json" in r.stderr and "logs/l.jsonl" in r.stderr


@pytest.mark.parametrize("make", ["dir", "under-file"])
def test_a_metrics_path_that_cannot_be_a_file_is_a_diagnostic(tmp_path: Path, make: str
                                                              ) -> None:
    repo = _repo(tmp_path)
    if make == "dir":
        (repo / "monitor" / "metrics.json").mkdir(parents=True)
    else:
        (repo / "monitor").write_text("a file\n")
    r = mlspec("monitor", cwd=repo)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stdout + r.stderr
    assert "monitor/metrics.json" in r.stderr


@pytest.mark.parametrize("out", [".", "mlspec.yaml/p.json"])
def test_profile_output_that_cannot_be_written_is_a_diagnostic(tmp_path: Path, out: str
                                                               ) -> None:
    repo = _repo(tmp_path)
    (repo / "d.csv").write_text("a\n1\n2\n3\n")
    r = mlspec("profile", "d.csv", "-o", out, cwd=repo)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stdout + r.stderr
    assert "[profile.output]" in r.stderr


def test_validate_refuses_monitor_paths_through_a_symlink_out(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    repo = _repo(tmp_path)
    (repo / "monitor").symlink_to(tmp_path / "outside")
    r = mlspec("validate", cwd=repo)
    assert r.returncode == 2 and "[spec.unsafe-path]" in r.stderr, r.stdout + r.stderr
    assert "'monitor/metrics.json' leads out of the repository" in r.stderr

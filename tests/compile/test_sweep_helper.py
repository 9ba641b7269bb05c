"""The CI helper that stashes sweep variants and picks the best (python -m mlspec.compile.sweep),
run as the generated jobs run it: a real subprocess in a workspace."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def sweep(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlspec.compile.sweep", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def _variant(ws: Path, job_index: str, n: int, f1: float) -> None:
    (ws / "model").mkdir(exist_ok=True)
    (ws / "model" / "model.pkl").write_text(f"model-{n}")
    (ws / "metrics.json").write_text(json.dumps({"f1_macro": f1}))
    (ws / "mlspec.lock").write_text(f"lock-{n}")
    res = sweep("stash", "--dir", "mlspec-sweep/train", "--variant", job_index,
                "--param", f"n_estimators={n}", "model/model.pkl", "metrics.json", "mlspec.lock",
                cwd=ws)
    assert res.returncode == 0, res.stderr


def test_stash_then_pick_best(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    for idx, (n, f1) in enumerate([(50, 0.91), (100, 0.97), (200, 0.97), (400, 0.5)]):
        _variant(ws, str(idx), n, f1)
    for f in ("model", "metrics.json", "mlspec.lock"):  # the select job starts without them
        subprocess.run(["rm", "-rf", f], cwd=ws, check=True)
    res = sweep("pick", "--dir", "mlspec-sweep/train", "--metrics", "metrics.json",
                "--metric", "f1_macro", "--goal", "maximize", "--summary", "sweep.md", cwd=ws)
    assert res.returncode == 0, res.stderr
    assert (ws / "model" / "model.pkl").read_text() == "model-100"  # first of equals
    assert (ws / "mlspec.lock").read_text() == "lock-100"
    table = (ws / "sweep.md").read_text()
    assert "| 1 | n_estimators=100 | 0.97 | **chosen** |" in table
    assert not (ws / "variant.json").exists()
    res = sweep("pick", "--dir", "mlspec-sweep/train", "--metrics", "metrics.json",
                "--metric", "f1_macro", "--goal", "minimize", cwd=ws)
    assert (ws / "model" / "model.pkl").read_text() == "model-400"


def test_pick_fails_without_the_metric_or_variants(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    assert sweep("pick", "--dir", "nothing", cwd=ws).returncode == 2
    _variant(ws, "0", 10, 0.9)
    res = sweep("pick", "--dir", "mlspec-sweep/train", "--metrics", "metrics.json",
                "--metric", "accuracy", "--goal", "maximize", cwd=ws)
    assert res.returncode == 1 and "no variant reported the metric 'accuracy'" in res.stderr

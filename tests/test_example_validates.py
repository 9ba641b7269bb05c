from pathlib import Path

from conftest import EXAMPLES, mlspec


def test_iris_validates() -> None:
    r = mlspec("validate", "mlspec.yaml", cwd=EXAMPLES / "iris")
    assert r.returncode == 0, r.stderr
    assert "ok (3 steps)" in r.stdout


def test_iris_graph_order(tmp_path: Path) -> None:
    r = mlspec("graph", cwd=EXAMPLES / "iris")
    assert r.stdout.splitlines() == [
        "prepare [data]",
        "train [model] <- prepare",
        "evaluate [model] <- prepare, train",
        "inference.monitor [inference]",  # a custom command: it reads no declared out
    ]

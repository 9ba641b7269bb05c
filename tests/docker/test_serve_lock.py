"""Untrusted pickles and hostile locks: `mlspec serve` unpickles only bytes that mlspec.lock
records (checked before unpickling), and every lock reader (serve's /metadata, build's metric
labels) goes through the hardened reader, so an alias bomb costs nothing."""

from __future__ import annotations

import json
import pickle
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import copy_example
from test_serve_server import file_hash, mlspec_cmd, record_outs, train_iris

from mlspec.errors import MlspecError
from mlspec.image.serve import load_model, make_server
from mlspec.run.hashing import Hasher

# 624 bytes of YAML that expand to 10^9 list items through aliases
BOMB = "\n".join(["a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]"]
                 + [f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]"
                    for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
                 + ["steps:", "  train:", "    metrics: *i", "version: 1", ""])


class Trap:
    """A pickle that creates a file when it is unpickled: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def trap(folder: Path) -> tuple[Path, Path]:
    (folder / ".git").mkdir(exist_ok=True)  # the repository root: the lock search stops here
    model = folder / "model" / "model.pkl"
    model.parent.mkdir(parents=True, exist_ok=True)
    marker = folder / "PWNED"
    model.write_bytes(pickle.dumps(Trap(marker)))
    return model, marker


def test_a_model_without_a_lock_is_refused_before_unpickling(tmp_path: Path) -> None:
    model, marker = trap(tmp_path)
    with pytest.raises(MlspecError) as err:
        load_model(model)
    assert not marker.exists()
    message = str(err.value)
    assert "no mlspec.lock records this model" in message and "--allow-unlocked" in message
    # the explicit flag unpickles it (and this one is no estimator)
    with pytest.raises(MlspecError, match="no predict"):
        load_model(model, allow_unlocked=True)
    assert marker.exists()


def test_a_model_that_differs_from_its_lock_entry_is_refused(tmp_path: Path) -> None:
    model, marker = trap(tmp_path)
    record_outs(tmp_path, {"model/model.pkl": "sha256:" + "0" * 64})
    with pytest.raises(MlspecError) as err:
        load_model(model)
    assert not marker.exists()
    assert "differs from what" in str(err.value) and "step 'train'" in str(err.value)


def test_a_lock_without_an_entry_for_the_model_is_refused(tmp_path: Path) -> None:
    model, marker = trap(tmp_path)
    record_outs(tmp_path, {"data/other.csv": file_hash(model)})  # right hash, wrong path
    with pytest.raises(MlspecError, match="records no out holding this model"):
        load_model(model)
    assert not marker.exists()


def test_a_model_in_a_directory_out_is_checked_through_the_manifest(tmp_path: Path) -> None:
    path = train_iris(tmp_path, record=False)
    (path.parent / "notes.txt").write_text("trained on iris\n")
    record_outs(tmp_path, {"model": str(Hasher(tmp_path, use_cache=False).hash_path("model"))})
    served = load_model(path)
    assert served.metadata["lineage"]["matches_lock"] is True  # type: ignore[index]
    # another file of the directory changes: the directory no longer matches its record
    (path.parent / "notes.txt").write_text("swapped\n")
    with pytest.raises(MlspecError, match="the directory model holding the model differs"):
        load_model(path)


def test_the_lock_search_stops_at_the_repository_root(tmp_path: Path) -> None:
    path = train_iris(tmp_path / "outer" / "repo", record=False)
    (tmp_path / "outer" / "repo" / ".git").mkdir()
    record_outs(tmp_path / "outer", {"repo/model/model.pkl": file_hash(path)})
    with pytest.raises(MlspecError, match=r"no mlspec\.lock records this model"):
        load_model(path)


def test_a_lock_with_aliases_is_not_read_and_the_model_is_refused(tmp_path: Path) -> None:
    path = train_iris(tmp_path, record=False)
    (tmp_path / "mlspec.lock").write_text(
        f"steps:\n  train:\n    outs: &o\n      model/model.pkl: \"{file_hash(path)}\"\n"
        "  copy:\n    outs: *o\nversion: 1\n")
    with pytest.raises(MlspecError) as err:
        load_model(path)
    assert "cannot check the model against" in str(err.value)
    assert "alias" in str(err.value).lower()


def test_an_alias_bomb_lock_keeps_healthz_responsive(tmp_path: Path) -> None:
    path = train_iris(tmp_path, record=False)
    (tmp_path / "mlspec.lock").write_text(BOMB)
    assert len(BOMB.encode()) < 700
    start = time.monotonic()
    with pytest.raises(MlspecError, match="cannot check the model"):
        load_model(path)
    served = load_model(path, allow_unlocked=True)
    assert time.monotonic() - start < 10
    srv = make_server(served, "127.0.0.1", 0, quiet=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_port}"
    try:
        for _ in range(3):
            with urllib.request.urlopen(f"{url}/metadata", timeout=5) as resp:
                meta = json.loads(resp.read())
            assert "unreadable lock" in meta["lineage"]["error"]
            assert meta["n_features_in"] == 4
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as resp:
                assert json.loads(resp.read()) == {"status": "ok"}
    finally:
        srv.shutdown()
        srv.server_close()


def test_build_reads_the_lock_with_the_hardened_reader(tmp_path: Path) -> None:
    from mlspec.api import load
    from mlspec.image.build import metric_values

    repo = copy_example("iris", tmp_path / "iris")
    loaded = load(repo / "mlspec.yaml")
    (repo / "metrics.json").write_text('{"f1_macro": 0.9}')
    (repo / "mlspec.lock").write_text(BOMB)
    start = time.monotonic()
    assert metric_values(loaded) == {"f1_macro": 0.9}  # the bomb is refused, not expanded
    assert time.monotonic() - start < 5
    # an alias to a metrics mapping: the old reader took it; the lock's one reader does not
    (repo / "mlspec.lock").write_text("steps:\n  a:\n    metrics: &m {f1_macro: 0.5}\n"
                                      "  b:\n    metrics: *m\nversion: 1\n")
    assert metric_values(loaded) == {"f1_macro": 0.9}
    (repo / "mlspec.lock").write_text("steps:\n  a:\n    metrics: {f1_macro: 0.5}\nversion: 1\n")
    assert metric_values(loaded) == {"f1_macro": 0.5}


def test_serve_help_documents_the_pickle_risk(tmp_path: Path) -> None:
    import subprocess

    res = subprocess.run([*mlspec_cmd(), "serve", "--help"], capture_output=True, text=True,
                         timeout=60, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    text = " ".join(res.stdout.split())
    assert "--allow-unlocked" in text and "runs code" in text
    assert "Never serve a model file from elsewhere" in text
    # and the console script refuses an unrecorded model with a diagnostic (exit 2)
    model, marker = trap(tmp_path)
    res = subprocess.run([*mlspec_cmd(), "serve", str(model), "--port", "0"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "[serve.model]" in res.stderr
    assert "Traceback" not in res.stderr and not marker.exists()

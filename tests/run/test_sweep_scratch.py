"""The scratch copy a sweep variant runs in under `--jobs N` (mlspec.run.sweep.scratch_copy)."""

from __future__ import annotations

import errno
import os
import shutil
import threading
from pathlib import Path

import pytest

from mlspec import layout
from mlspec.errors import MlspecError
from mlspec.run import sweep


def _project(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src/step.py").write_text("print('hi')\n")
    (root / ".git").mkdir()
    (root / ".git/HEAD").write_text("ref: refs/heads/main\n")
    (root / layout.STATE / "sweeps").mkdir(parents=True)
    (root / layout.STATE / "sweeps/x.json").write_text("{}")
    (root / "link").symlink_to("src/step.py")
    return root


def test_the_copy_skips_git_and_state_and_shares_the_cache(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    with sweep.scratch_copy(root) as dest:
        assert (dest / "src/step.py").read_text() == "print('hi')\n"
        assert os.readlink(dest / "link") == "src/step.py"
        assert not (dest / ".git").exists()
        assert not (dest / layout.STATE / "sweeps").exists()
        (dest / layout.CACHE / "probe").write_text("stored by a variant")
        kept = dest
    assert (root / layout.CACHE / "probe").read_text() == "stored by a variant"
    assert not kept.exists()  # removed afterwards


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_in_the_project_is_skipped_not_read(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    os.mkfifo(root / "pipe")  # shutil.copy2 refuses it, failing the whole copy
    seen: list[bool] = []

    def copy() -> None:
        with sweep.scratch_copy(root) as dest:
            seen.extend([(dest / "pipe").exists(), (dest / "src/step.py").exists()])

    t = threading.Thread(target=copy, daemon=True)
    t.start()
    t.join(20)
    if t.is_alive():  # unblock the copy reading the FIFO, then fail
        os.close(os.open(root / "pipe", os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("the copy blocked on the FIFO")
    assert seen == [False, True]


def test_a_failed_copy_is_a_diagnostic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(tmp_path / "p")

    def full(*_: object, **__: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copytree", full)
    with pytest.raises(MlspecError) as err, sweep.scratch_copy(root):
        pass
    [diag] = err.value.diagnostics
    assert diag.rule == "run.sweep-copy" and "No space left on device" in diag.message
    assert "--jobs 1" in (diag.hint or "")

"""`mlspec gc`: drop the local cache's runs (mlspec.run.cache) that neither mlspec.lock nor a
step record in .mlspec/steps names, the objects only they use, and the temporary directories
of a push or pull that was killed (they hold the run lock, as gc does, so none is live). A dry
run by default."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from mlspec import layout
from mlspec.errors import MlspecError, Outcome, say
from mlspec.run.cache import Cache
from mlspec.run.execute import run_lock
from mlspec.run.lock import Lock, read_lock


def protected(root: Path) -> set[str]:
    """Keys `mlspec gc` keeps: the lock's steps and every step record in .mlspec/steps."""
    keys: set[str] = set()
    try:
        lock = read_lock(root)
    except MlspecError:  # a broken lock protects nothing; gc still reports
        lock = None
    if lock is not None:
        keys |= {e.key for e in lock.steps.values()}
    with contextlib.suppress(OSError), os.scandir(Path(root) / layout.RECORDS) as it:
        for e in it:
            if not (e.name.endswith(".lock") and e.is_file(follow_symlinks=False)):
                continue
            try:
                rec = Lock.parse(Path(e.path).read_text(encoding="utf-8"), file=e.name)
            except (OSError, UnicodeDecodeError, MlspecError):  # a broken record
                continue
            keys |= {s.key for s in rec.steps.values()}
    return keys


def collect(root: Path, delete: bool) -> Outcome:
    """`mlspec gc`: the runs neither mlspec.lock nor a step record names, and the objects
    only they use; listed (dry run) or deleted (under the run lock, so no run races it)."""
    with run_lock(Path(root), say):
        cache = Cache(Path(root))
        runs = cache.runs()
        keep = protected(Path(root))
        drop = {k for k in runs if k not in keep}
        files, size = cache.plan_drop(drop)
        scratch = _scratch(cache.dir)
        size += sum(_size(d) for d in scratch)
        rel = [f.relative_to(Path(root)).as_posix() for f in [*files, *scratch]]
        data = {"deleted": delete, "files": rel, "bytes": size, "runs": len(drop),
                "kept_runs": len(runs) - len(drop)}
        if delete:
            for f in files:
                with contextlib.suppress(OSError):
                    f.unlink()
            for d in scratch:
                shutil.rmtree(d, ignore_errors=True)
    lines = [*rel] if not delete else []
    left = f" and {len(scratch)} unfinished transfer(s)" if scratch else ""
    what = (f"{len(drop)} cached run(s), {len(files) - len(drop)} object(s){left}, "
            f"{num_bytes(size)}")
    kept = f"kept {len(runs) - len(drop)} run(s) named by {layout.LOCK} or {layout.RECORDS}"
    if delete:
        lines.append(f"deleted {what}; {kept}")
    elif rel:
        lines.append(f"would delete {what}; {kept}; run `mlspec gc --yes` to delete them")
    else:
        lines.append(f"nothing to delete; {kept}")
    return Outcome(text="\n".join(lines), data=data)


def _scratch(cache_dir: Path) -> list[Path]:
    """What a killed `mlspec push` / `pull` left: its temporary directories in the cache."""
    with contextlib.suppress(OSError), os.scandir(cache_dir) as it:
        return sorted(Path(e.path) for e in it if e.name.startswith(layout.TRANSFER_SCRATCH)
                      and e.is_dir(follow_symlinks=False))
    return []


def _size(d: Path) -> int:
    total = 0
    for dirpath, _, names in os.walk(d):
        for n in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, n)).st_size
    return total



def num_bytes(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} bytes" if unit == "bytes" else f"{size:.1f} {unit} ({n} bytes)"
        size /= 1024
    return f"{n} bytes"

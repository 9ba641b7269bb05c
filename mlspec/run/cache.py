"""The local cache of step outs, by step key (`.mlspec/cache`): restored instead of re-executed.

Content-addressed: every out file is stored once, `objects/<sha256 hex>`, and every step run
leaves one run record, `runs/<key hex>.json`: the step's lock entry (params, deps, outs,
metrics) and, per out, its hash (a directory out: its manifest, the same file list the
directory's hash is made of, see mlspec.run.hashing). A stale step whose key has a run record
is restored from it: each file is copied (`shutil.copyfile`, which uses copy_file_range or a
reflink where the filesystem can) to a temporary name beside its out, its hash checked, and
only when every out of the step is in place under its temporary name are they renamed over
the outs; any failure removes the temporaries and leaves the working tree as it was. Outs are
never hard links into the cache, so a script that rewrites its out in place cannot corrupt it.

The cache is an optimisation: an unreadable or malformed record, a missing or corrupt object,
a full disk, all cost a re-execution, never a wrong out. Its size is capped
(`MLSPEC_CACHE_MAX_BYTES`, default 5 GiB): after a store, the least recently used run
records go first, then the objects no remaining record refers to. `mlspec gc`
(mlspec.run.cache_gc) drops every run the lock and the step records (`.mlspec/steps`) do not
name.

A no-op `mlspec run` never opens the cache: it is read only for a step that would execute.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat as stat_mod
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from mlspec import layout
from mlspec.fsutil import write_atomic
from mlspec.run.hashing import CHUNK, tree_hash
from mlspec.run.lock import Lock, StepLock

VERSION = 1
DEFAULT_MAX_BYTES = 5 << 30
MAX_ENV = "MLSPEC_CACHE_MAX_BYTES"
_HEX = re.compile(r"sha256:([0-9a-f]{64})")
_TMP = ".mlspec-restore-"


class RestoreFailed(Exception):
    """A cached run could not be put in place (the working tree is left as it was)."""


def _hex(h: object) -> str | None:
    m = _HEX.fullmatch(h) if isinstance(h, str) else None
    return m.group(1) if m else None


def max_bytes() -> int:
    raw = os.environ.get(MAX_ENV, "").strip()
    try:
        return max(0, int(raw)) if raw else DEFAULT_MAX_BYTES
    except ValueError:
        return DEFAULT_MAX_BYTES


def hash_file(path: Path) -> str:
    """A file's content digest, `sha256:<hex>` (the form of every blob name here and in the
    remote)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _safe_rel(p: object) -> bool:
    """A manifest path: relative, no '..', no empty or dot parts (hostile records)."""
    if not isinstance(p, str) or not p or p.startswith("/") or "\\" in p or "\0" in p:
        return False
    parts = p.rstrip("/").split("/")
    return all(part not in ("", ".", "..") for part in parts)


@dataclass
class Out:
    """One cached out: a file (hash) or a directory (hash and manifest)."""

    path: str
    hash: str
    files: list[tuple[str, str]] | None = None  # directory manifest, as Hasher.tree gives


@dataclass
class CachedRun:
    key: str
    entry: StepLock
    outs: list[Out] = field(default_factory=list)


@dataclass
class Cache:
    root: Path

    @property
    def dir(self) -> Path:
        return Path(self.root) / layout.CACHE

    def _object(self, h: str) -> Path:
        return self.dir / "objects" / (_hex(h) or "-")

    def _run(self, key: str) -> Path:
        return self.dir / "runs" / f"{_hex(key) or '-'}.json"

    # -- store -----------------------------------------------------------------------------
    def store(self, entry: StepLock, trees: dict[str, list[tuple[str, str]] | None]) -> bool:
        """Keep a successful run's outs under its key. `trees` holds each out's manifest
        (None for a file). Returns False (and stores no record) when an out changed since it
        was hashed or the cache cannot be written."""
        if _hex(entry.key) is None:
            return False
        outs: list[Out] = []
        try:
            for path, h in sorted(entry.outs.items()):
                files = trees.get(path)
                full = Path(self.root) / path.rstrip("/")
                if files is None:
                    if not self._put(full, h):
                        return False
                    outs.append(Out(path, h))
                    continue
                for rel, fh in files:
                    if not fh.startswith("symlink:") and not self._put(full / rel, fh):
                        return False
                outs.append(Out(path, h, list(files)))
            data = {"version": VERSION, "key": entry.key, "entry": entry.to_data(),
                    "outs": [{"path": o.path, "hash": o.hash,
                              **({"files": [list(f) for f in o.files]}
                                 if o.files is not None else {})} for o in outs]}
            run = self._run(entry.key)
            run.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(run, json.dumps(data, sort_keys=True, separators=(",", ":")))
        except OSError:
            return False
        self.evict(keep={entry.key})
        return True

    def _put(self, src: Path, h: str) -> bool:
        """Copy one file into objects/ under its hash, checked; True when it is there."""
        obj = self._object(h)
        if _hex(h) is None:
            return False
        if obj.is_file():
            return True
        obj.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=obj.parent, prefix=".tmp-")
        os.close(fd)
        try:
            shutil.copyfile(src, tmp)
            if hash_file(Path(tmp)) != h:
                return False  # the out changed after it was hashed: store nothing
            os.chmod(tmp, 0o444)
            os.replace(tmp, obj)
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    # -- look up ---------------------------------------------------------------------------
    def lookup(self, key: str) -> CachedRun | None:
        """The cached run of this key when its record is sound and every object is there."""
        path = self._run(key)
        try:
            if _hex(key) is None or not path.is_file():
                return None
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        run = _parse(data, key)
        if run is None:
            return None
        for o in run.outs:
            hashes = [o.hash] if o.files is None else \
                [h for _, h in o.files if not h.startswith("symlink:")]
            if not all(self._object(h).is_file() for h in hashes):
                return None
        return run

    # -- restore ---------------------------------------------------------------------------
    def restore(self, run: CachedRun) -> None:
        """Put the run's outs in place, every file's hash checked; all or nothing."""
        root = Path(self.root)
        real_root = os.path.realpath(root)
        staged: list[tuple[Path, Path]] = []  # (temporary, out)
        try:
            for o in run.outs:
                dest = root / o.path.rstrip("/")
                dest.parent.mkdir(parents=True, exist_ok=True)
                parent = os.path.realpath(dest.parent)
                if parent != real_root and not parent.startswith(real_root + os.sep):
                    raise RestoreFailed(f"the directory of out '{o.path}' leads outside the "
                                        "repository")
                if o.files is None:
                    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=_TMP)
                    os.close(fd)
                    staged.append((Path(name), dest))
                    self._copy_checked(o.hash, Path(name))
                else:
                    tmpdir = Path(tempfile.mkdtemp(dir=dest.parent, prefix=_TMP))
                    staged.append((tmpdir, dest))
                    for rel, h in o.files:
                        target = tmpdir / rel.rstrip("/")
                        target.parent.mkdir(parents=True, exist_ok=True)
                        if h.startswith("symlink:"):
                            os.symlink(h[len("symlink:"):], target)
                        else:
                            self._copy_checked(h, target)
                    if tree_hash(o.files) != o.hash:
                        raise RestoreFailed(f"the manifest of out '{o.path}' does not match "
                                            "its hash")
            for staged_path, dest in staged:
                _swap(staged_path, dest)
            staged = []
        except (OSError, RestoreFailed) as exc:
            for staged_path, _ in staged:
                _remove(staged_path)
            if isinstance(exc, RestoreFailed):
                raise
            raise RestoreFailed(str(exc)) from None
        with contextlib.suppress(OSError):
            os.utime(self._run(run.key))  # recently used: evicted last

    def _copy_checked(self, h: str, target: Path) -> None:
        obj = self._object(h)
        shutil.copyfile(obj, target)
        os.chmod(target, 0o644)
        if hash_file(target) != h:
            with contextlib.suppress(OSError):
                obj.unlink()  # corrupt: the next store puts it back
            raise RestoreFailed(f"cached object {h[:19]}… is corrupt (removed)")

    # -- size and gc -----------------------------------------------------------------------
    def runs(self) -> dict[str, tuple[Path, os.stat_result]]:
        out: dict[str, tuple[Path, os.stat_result]] = {}
        with contextlib.suppress(OSError), os.scandir(self.dir / "runs") as it:
            for e in it:
                if e.name.endswith(".json") and e.is_file(follow_symlinks=False):
                    out["sha256:" + e.name[:-5]] = (Path(e.path), e.stat())
        return out

    def objects(self) -> dict[str, int]:
        out: dict[str, int] = {}
        with contextlib.suppress(OSError), os.scandir(self.dir / "objects") as it:
            for e in it:
                if e.is_file(follow_symlinks=False):
                    out[e.name] = e.stat().st_size
        return out

    def references(self, keys: set[str]) -> dict[str, set[str]]:
        """The object names each run refers to (an unreadable run: none)."""
        refs: dict[str, set[str]] = {}
        for key in keys:
            run = self._read(key)
            names = refs.setdefault(key, set())
            for o in run.outs if run else []:
                for h in [o.hash] if o.files is None else [h for _, h in o.files]:
                    n = _hex(h)
                    if n:
                        names.add(n)
        return refs

    def _read(self, key: str) -> CachedRun | None:
        try:
            return _parse(json.loads(self._run(key).read_text(encoding="utf-8")), key)
        except (OSError, ValueError):
            return None

    def plan_drop(self, drop: set[str], runs: dict[str, tuple[Path, os.stat_result]]
                  | None = None, refs: dict[str, set[str]] | None = None,
                  objects: dict[str, int] | None = None) -> tuple[list[Path], int]:
        """The files deleting runs `drop` removes (the runs, then the objects, leftover
        temporaries included, that no other run refers to) and their bytes."""
        runs = self.runs() if runs is None else runs
        refs = self.references(set(runs)) if refs is None else refs
        objects = self.objects() if objects is None else objects
        keep = set().union(*(refs.get(k, set()) for k in runs if k not in drop))
        files = [runs[k][0] for k in sorted(drop) if k in runs]
        size = sum(runs[k][1].st_size for k in drop if k in runs)
        for name, n in sorted(objects.items()):
            if name not in keep:
                files.append(self.dir / "objects" / name)
                size += n
        return files, size

    def evict(self, keep: set[str], limit: int | None = None) -> None:
        """Drop least recently used runs (never `keep`) until the cache fits its cap."""
        limit = max_bytes() if limit is None else limit
        runs, objects = self.runs(), self.objects()
        total = sum(st.st_size for _, st in runs.values()) + sum(objects.values())
        if total <= limit:
            return
        refs = self.references(set(runs))
        order = sorted((k for k in runs if k not in keep), key=lambda k: runs[k][1].st_mtime_ns)
        drop: set[str] = set()
        files: list[Path] = []
        for k in order:
            drop.add(k)
            files, size = self.plan_drop(drop, runs, refs, objects)
            if total - size <= limit:
                break
        for f in files:
            with contextlib.suppress(OSError):
                f.unlink()


def _parse(data: object, key: str) -> CachedRun | None:
    if not isinstance(data, dict) or data.get("version") != VERSION or data.get("key") != key:
        return None
    raw, outs = data.get("entry"), data.get("outs")
    if not isinstance(raw, dict) or not isinstance(outs, list):
        return None
    try:
        entry = Lock.from_data({"steps": {"step": raw}}).steps["step"]
    except (TypeError, ValueError, KeyError, AttributeError):
        return None
    if entry.key != key:
        return None
    run = CachedRun(key, entry)
    for o in outs:
        if not isinstance(o, dict) or not _safe_rel(o.get("path")) or _hex(o.get("hash")) is None:
            return None
        files = o.get("files")
        if files is None:
            run.outs.append(Out(o["path"], o["hash"]))
            continue
        if not isinstance(files, list) or not all(
                isinstance(f, list) and len(f) == 2 and _safe_rel(f[0]) and isinstance(f[1], str)
                and (_hex(f[1]) or (f[1].startswith("symlink:") and f[0].endswith("/")
                                    and _inner_link(f[1][len("symlink:"):])))
                for f in files):
            return None
        links = [f[0] for f in files if f[1].startswith("symlink:")]
        if any(f[0] != link and f[0].startswith(link) for f in files for link in links):
            return None  # a file "inside" a directory link would be written through it
        run.outs.append(Out(o["path"], o["hash"], [(f[0], f[1]) for f in files]))
    if sorted(o.path for o in run.outs) != sorted(entry.outs) or any(
            entry.outs[o.path] != o.hash for o in run.outs):
        return None
    return run


def _inner_link(target: str) -> bool:
    """A directory link a restore recreates: relative, and never climbing out ('..')."""
    return bool(target) and not target.startswith("/") and "\0" not in target and \
        ".." not in target.split("/")


def _swap(tmp: Path, dest: Path) -> None:
    """Rename `tmp` over `dest`, whatever `dest` is now (file, directory, link, nothing)."""
    try:
        st = os.lstat(dest)
    except FileNotFoundError:
        st = None
    if st is not None and (stat_mod.S_ISDIR(st.st_mode) or tmp.is_dir()):
        # rename cannot put a directory over a file or replace a directory: move it aside
        old = Path(tempfile.mkdtemp(dir=dest.parent, prefix=_TMP))
        os.replace(dest, old / "old")
        try:
            os.replace(tmp, dest)
        except OSError:
            os.replace(old / "old", dest)  # put it back as it was
            raise
        finally:
            _remove(old)
    else:
        os.replace(tmp, dest)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            p.unlink()

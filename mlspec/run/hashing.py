"""Content hashes of files and directories, cached by (size, mtime_ns, ctime_ns, inode).

A file is read only when its stat signature changed since it was last hashed, so a no-op
`mlspec run` or `mlspec status` over a large dataset stats files and reads no data. A
directory hashes to the sha256 of its sorted manifest (`<hash>  <relative path>` lines).
The cache lives in `.mlspec/hashes.json`; losing it costs time, never correctness: a cache
that is unreadable, malformed or replaced by a directory is ignored (and not rewritten).

Only regular files and directories are content: a FIFO, socket or device given as a dep or out
is refused (NotRegularFile) after an `lstat`/`stat`, never opened, so it cannot hang a run.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat as stat_mod
import time
from pathlib import Path

from mlspec import layout
from mlspec.errors import Diagnostic, MlspecError
from mlspec.fsutil import write_atomic

CACHE_DIR, CACHE_FILE = layout.HASH_CACHE.rsplit("/", 1)
CACHE_VERSION = 1
CHUNK = 1 << 20
RACY_NS = 2_000_000_000

Sig = tuple[int, int, int, int]


class NotRegularFile(MlspecError):
    """A dep or out that is a FIFO, socket or device: refused, never opened."""

    def __init__(self, rel: str, kind: str, step: str = "", role: str = "dep or out"):
        self.rel, self.kind = rel, kind
        whose = f" of step '{step}'" if step else ""
        super().__init__([Diagnostic(
            "", 0, 0, f"{role} '{rel}'{whose} is a {kind}, not a regular file or directory: "
            "mlspec hashes only files and directories (reading it could block forever)",
            "run.not-a-file", f"replace '{rel}' with a regular file, or remove it from the "
            "step's deps/outs")])

    def for_step(self, step: str, role: str) -> NotRegularFile:
        return NotRegularFile(self.rel, self.kind, step, role)


def file_kind(mode: int) -> str | None:
    """None for a regular file or directory; else what it is, in words."""
    if stat_mod.S_ISREG(mode) or stat_mod.S_ISDIR(mode):
        return None
    if stat_mod.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat_mod.S_ISSOCK(mode):
        return "socket"
    if stat_mod.S_ISCHR(mode) or stat_mod.S_ISBLK(mode):
        return "device"
    return "special file"


def _valid_entry(v: object) -> bool:
    return (isinstance(v, list) and len(v) == 5
            and all(isinstance(x, int) and not isinstance(x, bool) for x in v[:4])
            and isinstance(v[4], str))


def sha256_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _sig(st: os.stat_result) -> Sig:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class Hasher:
    """Hashes repository paths (relative, '/'-separated) with a persistent stat cache."""

    def __init__(self, root: Path, use_cache: bool = True):
        self.root = Path(root)
        self.use_cache = use_cache
        self.cache: dict[str, list[int | str]] = {}
        self.dirty = False
        self.reads = 0  # files actually read (for tests and benchmarks)
        if use_cache:
            self._load()

    # -- cache file ------------------------------------------------------------------------
    @property
    def cache_path(self) -> Path:
        return self.root / CACHE_DIR / CACHE_FILE

    def _load(self) -> None:
        try:
            if not self.cache_path.is_file():  # missing, a directory or a FIFO: no cache
                return
            data = json.loads(self.cache_path.read_bytes())
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("version") == CACHE_VERSION:
            entries = data.get("files")
            if isinstance(entries, dict):  # a malformed entry is dropped, not trusted
                self.cache = {k: v for k, v in entries.items()
                              if isinstance(k, str) and _valid_entry(v)}

    def save(self) -> None:
        if not (self.use_cache and self.dirty):
            return

        try:
            if self.cache_path.is_symlink() or self.cache_path.is_dir():
                return  # not ours to replace: the cache is an optimisation only
            self.cache_path.parent.mkdir(exist_ok=True)
            write_atomic(self.cache_path, json.dumps(
                {"version": CACHE_VERSION, "files": self.cache}, separators=(",", ":"),
                sort_keys=True))
        except OSError:
            return
        self.dirty = False

    # -- hashing ---------------------------------------------------------------------------
    def _file(self, rel: str, full: str, st: os.stat_result) -> str:
        sig = _sig(st)
        hit = self.cache.get(rel)
        if hit is not None and tuple(hit[:4]) == sig:
            return str(hit[4])
        h = hashlib.sha256()
        # O_NONBLOCK: a file swapped for a FIFO after the stat cannot block the open
        fd = os.open(full, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as fh:
            kind = file_kind(os.fstat(fd).st_mode)
            if kind is not None:
                raise NotRegularFile(rel, kind)
            while chunk := fh.read(CHUNK):
                h.update(chunk)
        self.reads += 1
        digest = "sha256:" + h.hexdigest()
        # A file written within the last moments may change again without its stat
        # signature changing (coarse kernel timestamps): like git's "racily clean" entries,
        # such a hash is used now but not cached.
        if self.use_cache and time.time_ns() - st.st_mtime_ns > RACY_NS:
            self.cache[rel] = [*sig, digest]
            self.dirty = True
        return digest

    def _walk(self, rel: str, full: str, out: list[tuple[str, str]]) -> None:
        with os.scandir(full) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            if e.name in (".git", CACHE_DIR, "__pycache__"):
                continue
            child_rel = f"{rel}/{e.name}"
            try:
                st = e.stat(follow_symlinks=True)
            except OSError:  # a dangling symlink: not content
                continue
            if stat_mod.S_ISDIR(st.st_mode):
                if e.is_symlink():  # never follow directory links (loops, escapes)
                    out.append((child_rel + "/", "symlink:" + os.readlink(e.path)))
                    continue
                self._walk(child_rel, e.path, out)
            elif stat_mod.S_ISREG(st.st_mode):
                out.append((child_rel, self._file(child_rel, e.path, st)))

    def hash_path(self, rel: str) -> str | None:
        """The content hash of a file or directory, or None when it does not exist."""
        rel = rel.rstrip("/")
        full = os.path.join(self.root, rel)
        try:
            st = os.stat(full)
        except (FileNotFoundError, NotADirectoryError):
            return None
        kind = file_kind(st.st_mode)
        if kind is not None:
            raise NotRegularFile(rel, kind)
        if stat_mod.S_ISDIR(st.st_mode):
            return tree_hash(self._tree(rel, full))
        return self._file(rel, full, st)

    def _tree(self, rel: str, full: str) -> list[tuple[str, str]]:
        files: list[tuple[str, str]] = []
        self._walk(rel, full, files)
        prefix = len(rel) + 1
        return [(p[prefix:], h) for p, h in files]

    def tree(self, rel: str) -> list[tuple[str, str]] | None:
        """A directory's manifest: (path inside it, hash) in order, a directory symlink as
        ('link/', 'symlink:<target>'); None when `rel` is not a directory."""
        rel = rel.rstrip("/")
        full = os.path.join(self.root, rel)
        if not os.path.isdir(full):
            return None
        return self._tree(rel, full)

    def hash_many(self, rels: list[str]) -> dict[str, str | None]:
        return {r: self.hash_path(r) for r in rels}


def tree_hash(files: list[tuple[str, str]]) -> str:
    """The hash of a directory from its manifest (see `Hasher.tree`)."""
    return sha256_bytes("".join(f"{h}  {p}\n" for p, h in files).encode())


def canonical(data: object) -> bytes:
    """Stable bytes for hashing structured data."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()

"""One step run to and from a remote store, through the local cache (mlspec.run.cache).

A step run is one OCI manifest tagged `sha256-<key hex>`: its config is the local cache's run
record (media type STEP_RUN: the step's lock entry and the manifest of every directory out), one
layer per out (a file: the file itself, so its digest is the out's hash; a directory: a
deterministic tarball of its regular files, sorted, mtime 0, owner 0), annotations naming the
step, key, out hashes, commit and mlspec version. The manifest's bytes depend on the run alone,
so two clones pushing the same run write the same manifest.

Pull goes remote → local cache → working tree: the record is checked against its key (and
against mlspec.lock when the lock has this key), every blob streams to a temporary file inside
`.mlspec/cache`, is hashed and kept only when its hash is the one the record names; then the
cache's own restore (hash-checked, all or nothing) puts the outs in place. A tampered or
truncated blob raises `remote.corrupt` before anything reaches the working tree.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Protocol

from mlspec import __version__, layout
from mlspec.fsutil import write_atomic
from mlspec.remote.errors import RemoteError
from mlspec.remote.url import Remote
from mlspec.run.cache import Cache, CachedRun, Out, hash_file
from mlspec.run.cache import _parse as parse_record

STEP_RUN = "application/vnd.mlspec.step-run.v1+json"
FILE_LAYER = "application/vnd.mlspec.out.file.v1"
DIR_LAYER = "application/vnd.mlspec.out.dir.v1.tar"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
TITLE = "org.opencontainers.image.title"
MAX_RECORD = 64 << 20
READ_BYTES = 1 << 20


class Store(Protocol):
    def has_blob(self, digest: str) -> bool: ...
    def put_blob(self, path: Path, digest: str, size: int) -> None: ...
    def get_blob(self, digest: str, dest: Path, max_size: int | None = None) -> str: ...
    def get_manifest(self, tag: str) -> bytes | None: ...
    def has_manifest(self, tag: str) -> bool: ...
    def put_manifest(self, tag: str, body: bytes) -> None: ...
    def tags(self) -> list[str]: ...
    def delete_manifest(self, tag: str, digest: str) -> bool: ...


def open_store(remote: Remote, push: bool = False, delete: bool = False) -> Store:
    if remote.kind == "file":
        from mlspec.remote.filestore import FileStore

        return FileStore(remote, push)
    from mlspec.remote.oci import Registry

    return Registry(remote, push, delete)


def tag_of(key: str) -> str:
    return key.replace(":", "-", 1)


def pin_tag(release: str, step: str) -> str:
    """The tag that keeps a release's pinned run tagged, `pin-<release>-<step>`, so that a
    registry's collection of untagged manifests never takes it when its key tag moves; a
    character outside the tag grammar becomes '-', and a name that had one or is too long
    gets a hash of the original instead (no two releases share a tag)."""
    raw = f"pin-{release}-{step}"
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", raw)
    if safe != raw or len(safe) > 128:
        safe = f"{safe[:100]}-{hashlib.sha256(raw.encode()).hexdigest()[:16]}"
    return safe


def _corrupt(remote: object, what: str) -> RemoteError:
    return RemoteError("remote.corrupt", f"{remote}: {what}; nothing was restored",
                       "push the step again from a clone where it is up to date")


def scratch(cache: Cache) -> Path:
    """A temporary directory inside .mlspec/cache (same filesystem as the objects)."""
    cache.dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=cache.dir, prefix=layout.TRANSFER_SCRATCH))


# -- push -----------------------------------------------------------------------------------
def write_tar(cache: Cache, files: list[tuple[str, str]], dest: Path) -> str:
    """A deterministic tarball of a directory out's regular files (from the cache's objects);
    its sha256 digest."""
    with tarfile.open(dest, "w", format=tarfile.GNU_FORMAT) as tf:
        for rel, h in files:
            if h.startswith("symlink:"):
                continue  # links live in the record's manifest and are recreated from it
            obj = cache._object(h)
            info = tarfile.TarInfo(rel)
            info.size, info.mtime, info.mode = obj.stat().st_size, 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(obj, "rb") as fh:
                tf.addfile(info, fh)
    return hash_file(dest)


def push_run(store: Store, cache: Cache, run: CachedRun, step: str, commit: str,
             tmp: Path) -> bool:
    """Upload one cached run; False when the remote already holds it."""
    tag = tag_of(run.key)
    if store.has_manifest(tag):
        return False
    layers: list[dict[str, object]] = []
    for o in run.outs:
        if o.files is None:
            path, digest, media = cache._object(o.hash), o.hash, FILE_LAYER
        else:
            path = tmp / f"{len(layers)}.tar"
            digest, media = write_tar(cache, o.files, path), DIR_LAYER
        size = path.stat().st_size
        if not store.has_blob(digest):
            store.put_blob(path, digest, size)
        layers.append({"mediaType": media, "digest": digest, "size": size,
                       "annotations": {TITLE: o.path, "dev.mlspec.out.hash": o.hash}})
    record = tmp / "record.json"
    record.write_bytes(cache._run(run.key).read_bytes())
    digest, size = hash_file(record), record.stat().st_size
    if not store.has_blob(digest):
        store.put_blob(record, digest, size)
    config = {"mediaType": STEP_RUN, "digest": digest, "size": size}
    manifest = {
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE, "artifactType": STEP_RUN,
        "config": config, "layers": layers,
        "annotations": {"dev.mlspec.step": step, "dev.mlspec.key": run.key,
                        "dev.mlspec.outs": json.dumps({o.path: o.hash for o in run.outs},
                                                      sort_keys=True),
                        "dev.mlspec.commit": commit, "dev.mlspec.version": __version__}}
    store.put_manifest(tag, json.dumps(manifest, sort_keys=True,
                                       separators=(",", ":")).encode())
    return True


# -- pull -----------------------------------------------------------------------------------
def fetch_run(store: Store, cache: Cache, key: str, expected: dict[str, str] | None,
              remote: object) -> CachedRun | None:
    """Bring the run of `key` from the remote into the local cache, every blob checked; None
    when the remote does not hold it."""
    body = store.get_manifest(tag_of(key))
    if body is None:
        return None
    tmp = scratch(cache)
    try:
        return _fetch(store, cache, key, expected, remote, body, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch_pinned(store: Store, cache: Cache, key: str, digest: str, expected: dict[str, str],
                 remote: object, what: str) -> CachedRun:
    """Bring the run a release pins into the local cache: its manifest BY DIGEST (bytes
    hashed to that digest, annotated with that step key), then as fetch_run."""
    body = store.get_manifest(digest)
    if body is None:
        raise RemoteError("remote.missing", f"{remote}: the manifest {digest[:19]}… that "
                          f"{what} is not in the remote (deleted or garbage-collected)",
                          "push the step from a clone where it is up to date (`mlspec "
                          "push`), or rebuild it: `mlspec run`")
    if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
        raise _corrupt(remote, f"the manifest that {what} does not hash to {digest[:19]}…")
    try:
        annotated = json.loads(body)["annotations"]["dev.mlspec.key"]
    except (ValueError, KeyError, TypeError):
        annotated = None
    if annotated != key:
        raise _corrupt(remote, f"the manifest {digest[:19]}… that {what} is not the run of "
                       f"step key {key[:19]}…")
    tmp = scratch(cache)
    try:
        run = _fetch(store, cache, key, expected, remote, body, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if run is None:
        raise _corrupt(remote, f"the run that {what} could not be put in the local cache")
    return run


def _fetch(store: Store, cache: Cache, key: str, expected: dict[str, str] | None,
           remote: object, body: bytes, tmp: Path) -> CachedRun | None:
    try:
        manifest = json.loads(body)
        config, layers = manifest["config"], manifest["layers"]
        config_digest, titles = str(config["digest"]), {
            str(layer["annotations"][TITLE]): layer for layer in layers}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise _corrupt(remote, f"the manifest of {tag_of(key)[:19]}… is malformed") from None
    record = tmp / "record.json"
    if store.get_blob(config_digest, record, MAX_RECORD) != config_digest:
        raise _corrupt(remote, f"the run record of {tag_of(key)[:19]}… does not match its "
                       "digest")
    try:
        run = parse_record(json.loads(record.read_bytes()), key)
    except ValueError:
        run = None
    if run is None:
        raise _corrupt(remote, f"the run record of {tag_of(key)[:19]}… does not describe "
                       "that key")
    if expected is not None and run.entry.outs != expected:
        raise _corrupt(remote, f"the outs of {tag_of(key)[:19]}… differ from mlspec.lock")
    for o in run.outs:
        layer = titles.get(o.path)
        if not isinstance(layer, dict):
            raise _corrupt(remote, f"out '{o.path}' has no layer")
        _fetch_out(store, cache, o, layer, remote, tmp)
    write_atomic(cache._run(key), record.read_text(encoding="utf-8"))
    return cache.lookup(key)


def _keep(cache: Cache, tmp_file: Path, h: str) -> None:
    obj = cache._object(h)
    obj.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(tmp_file, 0o444)
    os.replace(tmp_file, obj)


def _fetch_out(store: Store, cache: Cache, o: Out, layer: dict[str, object], remote: object,
               tmp: Path) -> None:
    digest = str(layer.get("digest"))
    if o.files is None:
        if cache._object(o.hash).is_file():
            return
        if digest != o.hash:
            raise _corrupt(remote, f"the layer of out '{o.path}' is not its hash")
        part = tmp / "blob"
        if store.get_blob(digest, part) != o.hash:
            raise _corrupt(remote, f"out '{o.path}': the blob does not match its hash "
                           "(tampered or truncated)")
        _keep(cache, part, o.hash)
        return
    want: dict[str, str] = {rel: h for rel, h in o.files if not h.startswith("symlink:")
                            and not cache._object(h).is_file()}
    if not want:
        return
    part = tmp / "blob.tar"
    if store.get_blob(digest, part) != digest:
        raise _corrupt(remote, f"out '{o.path}': the tarball does not match its digest "
                       "(tampered or truncated)")
    try:
        with tarfile.open(part, "r:") as tf:
            for member in tf:
                h = want.get(member.name)
                src = tf.extractfile(member) if member.isreg() else None
                if h is None or src is None:
                    continue
                piece = tmp / "file"
                hasher = hashlib.sha256()
                with src, open(piece, "wb") as out:
                    while chunk := src.read(READ_BYTES):
                        hasher.update(chunk)
                        out.write(chunk)
                if "sha256:" + hasher.hexdigest() != h:
                    raise _corrupt(remote, f"out '{o.path}': file '{member.name}' does not "
                                   "match its hash")
                _keep(cache, piece, h)
                want.pop(member.name)
    except (tarfile.TarError, EOFError):
        raise _corrupt(remote, f"out '{o.path}': the tarball is unreadable") from None
    if want:
        raise _corrupt(remote, f"out '{o.path}': the tarball lacks {len(want)} file(s)")

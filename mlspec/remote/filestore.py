"""A remote on a shared directory (`file:///dir`), laid out as the registry is addressed:
`blobs/sha256/<hex>`, `manifests/<tag>.json`, and every manifest again by its digest,
`manifests/sha256/<hex>.json` (what a release pins: GET /v2/<name>/manifests/sha256:<hex>).
Every write goes to a temporary name in the
same directory and is renamed into place, so a reader never sees half a file and two writers of
the same blob or tag both succeed."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from mlspec.remote.errors import RemoteError
from mlspec.remote.url import TAG_NAME, Remote

READ_BYTES = 1 << 20
MAX_MANIFEST = 4 << 20


class FileStore:
    def __init__(self, remote: Remote, push: bool = False) -> None:
        self.remote = remote
        self.root = Path(remote.path)
        if not self.root.is_dir():
            raise RemoteError("remote.unreachable", f"{remote}: no such directory",
                              "create it (a shared disk mounted here), or fix project.remote")

    def _blob(self, digest: str) -> Path:
        algo, _, hexd = digest.partition(":")
        if algo != "sha256" or len(hexd) != 64 or not all(c in "0123456789abcdef"
                                                           for c in hexd):
            raise RemoteError("remote.corrupt", f"{self.remote}: bad digest '{digest[:80]}'")
        return self.root / "blobs" / "sha256" / hexd

    def _manifest(self, tag: str) -> Path:
        if ":" in tag:  # a digest; a tag is [A-Za-z0-9_.-]
            return self.root / "manifests" / "sha256" / f"{self._blob(tag).name}.json"
        return self.root / "manifests" / f"{tag}.json"

    def _place(self, dest: Path, write: Callable[[IO[bytes]], object]) -> None:
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as out:
                    write(out)
                os.replace(tmp, dest)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        except OSError as exc:
            raise RemoteError("remote.io", f"{self.remote}: cannot write {dest.name}: "
                              f"{exc.strerror or exc}") from None

    def has_blob(self, digest: str) -> bool:
        return self._blob(digest).is_file()

    def put_blob(self, path: Path, digest: str, size: int) -> None:
        def write(out: IO[bytes]) -> None:
            with open(path, "rb") as src:
                shutil.copyfileobj(src, out, READ_BYTES)

        self._place(self._blob(digest), write)

    def get_blob(self, digest: str, dest: Path, max_size: int | None = None) -> str:
        h, n = hashlib.sha256(), 0
        try:
            with open(self._blob(digest), "rb") as src, open(dest, "wb") as out:
                while chunk := src.read(READ_BYTES):
                    n += len(chunk)
                    if max_size is not None and n > max_size:
                        break
                    h.update(chunk)
                    out.write(chunk)
        except FileNotFoundError:
            raise RemoteError("remote.missing", f"{self.remote}: blob {digest[:19]}… is "
                              "missing") from None
        except OSError as exc:
            raise RemoteError("remote.io", f"{self.remote}: {exc.strerror or exc}") from None
        return "sha256:" + h.hexdigest()

    def get_manifest(self, tag: str) -> bytes | None:
        try:
            with open(self._manifest(tag), "rb") as fh:
                body = fh.read(MAX_MANIFEST + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RemoteError("remote.io", f"{self.remote}: {exc.strerror or exc}") from None
        if len(body) > MAX_MANIFEST:
            raise RemoteError("remote.corrupt", f"{self.remote}: manifest {tag[:20]}… is too "
                              "big")
        return body

    def has_manifest(self, tag: str) -> bool:
        return self._manifest(tag).is_file()

    def put_manifest(self, tag: str, body: bytes) -> None:
        """By tag (and then by its digest too, written first) or by digest alone."""
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if ":" in tag and tag != digest:
            raise RemoteError("remote.corrupt", f"{self.remote}: manifest is not {tag[:19]}…")
        self._place(self._manifest(digest), lambda out: out.write(body))
        if tag != digest:
            self._place(self._manifest(tag), lambda out: out.write(body))

    def delete_manifest(self, tag: str, digest: str) -> bool:
        """Remove the tag `tag` when its manifest is still the one whose digest is `digest`;
        False when it is gone. The blobs stay: `delete_blob` removes those no manifest uses."""
        body = self.get_manifest(tag)
        if body is None:
            return False
        if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
            raise RemoteError("remote.changed", f"{self.remote}: {tag[:20]}… changed while gc "
                              "ran; nothing more was deleted", "run `mlspec gc --remote` again")
        try:
            self._manifest(tag).unlink()
            # and its copy by digest, as a registry deletes a manifest by digest
            with contextlib.suppress(FileNotFoundError):
                self._manifest(digest).unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise RemoteError("remote.io", f"{self.remote}: cannot delete {tag[:20]}…: "
                              f"{exc.strerror or exc}") from None
        return True

    def delete_blob(self, digest: str) -> bool:
        try:
            self._blob(digest).unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise RemoteError("remote.io", f"{self.remote}: cannot delete blob "
                              f"{digest[:19]}…: {exc.strerror or exc}") from None
        return True

    def tags(self) -> list[str]:
        """Every tag, sorted: the names of `manifests/<tag>.json` that are OCI tag names."""
        try:
            names = [p.name[:-5] for p in (self.root / "manifests").iterdir()
                     if p.name.endswith(".json")]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise RemoteError("remote.io", f"{self.remote}: {exc.strerror or exc}") from None
        return sorted(n for n in names if TAG_NAME.fullmatch(n))

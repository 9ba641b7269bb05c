"""Monitor records in the remote store: `put_record` after `mlspec monitor`, `newest` for
`mlspec metrics --history` and `mlspec report` (the format is mlspec.prodrecord).

A record is one OCI manifest (artifact type MONITOR_RUN) whose config blob is the record and
whose one layer is the OCI empty descriptor (`{}`), as OCI 1.1 advises for artifacts without
content. Reading lists the store's tags once, keeps the names in the record format and fetches
only the newest `limit` of them, each bounded: a manifest of at most MAX_MANIFEST bytes, a
record of at most MAX_RECORD, its digest checked. A record that is malformed, of another media
type, too big or not found becomes a note; a store that cannot be listed raises RemoteError.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from pathlib import Path

from mlspec import prodrecord
from mlspec.prodrecord import MONITOR_RUN, Record
from mlspec.remote.errors import RemoteError
from mlspec.remote.transfer import MANIFEST_TYPE, Store, open_store
from mlspec.remote.url import Remote

EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"
MAX_MANIFEST = 16 * 1024
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
PER_RECORD = frozenset({"remote.corrupt", "remote.missing"})  # a note; others stop reading


def _put(store: Store, body: bytes, tmp: Path) -> dict[str, object]:
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    if not store.has_blob(digest):
        path = tmp / digest.split(":", 1)[1]
        path.write_bytes(body)
        store.put_blob(path, digest, len(body))
    return {"digest": digest, "size": len(body)}


def put_record(remote: Remote, record: Record) -> str:
    """Store one record; its tag. Raises RemoteError."""
    store = open_store(remote, push=True)
    body = prodrecord.encode(record)
    tag = prodrecord.tag_of(record, body)
    with tempfile.TemporaryDirectory(prefix="mlspec-monitor-") as tmp:
        config = {"mediaType": MONITOR_RUN, **_put(store, body, Path(tmp))}
        empty = {"mediaType": EMPTY_TYPE, **_put(store, EMPTY, Path(tmp))}
    annotations = {"org.opencontainers.image.created": record.time,
                   "dev.mlspec.release": record.release or ""}
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "artifactType": MONITOR_RUN,
                "config": config, "layers": [empty], "annotations": annotations}
    store.put_manifest(tag, json.dumps(manifest, sort_keys=True,
                                       separators=(",", ":")).encode())
    return tag


def newest(remote: Remote, limit: int) -> tuple[list[Record], list[str]]:
    """The newest `limit` records, oldest first, and a note for each one that is unusable."""
    store = open_store(remote)
    tags = sorted(t for t in store.tags() if prodrecord.TAG.fullmatch(t))
    records: list[Record] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mlspec-monitor-") as tmp:
        for tag in tags[-limit:] if limit > 0 else []:
            try:
                records.append(_read(store, tag, Path(tmp) / "record"))
            except ValueError as exc:
                notes.append(f"monitor record {tag} is left out: {exc}")
            except RemoteError as err:
                if err.rule not in PER_RECORD:
                    raise
                notes.append(f"monitor record {tag} is left out: {err.message}")
    return records, notes


def _read(store: Store, tag: str, dest: Path) -> Record:
    body = store.get_manifest(tag)
    if body is None:
        raise ValueError("its manifest is gone")
    if len(body) > MAX_MANIFEST:
        raise ValueError(f"its manifest is larger than {MAX_MANIFEST // 1024} KiB")
    try:
        manifest = json.loads(body)
        config = manifest["config"]
        media, digest, size = config["mediaType"], config["digest"], config["size"]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise ValueError("its manifest is malformed") from None
    if media != MONITOR_RUN or manifest.get("artifactType", MONITOR_RUN) != MONITOR_RUN:
        raise ValueError(f"it is not a monitor record (media type "
                         f"'{str(media)[:80].encode('unicode_escape').decode()}')")
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise ValueError("its record digest is malformed")
    if isinstance(size, bool) or not isinstance(size, int) or size > prodrecord.MAX_RECORD:
        raise ValueError(f"its record is larger than {prodrecord.MAX_RECORD // 1024} KiB")
    if store.get_blob(digest, dest, prodrecord.MAX_RECORD + 1) != digest:
        raise ValueError("its record does not match its digest (tampered, truncated or "
                         "too big)")
    record = prodrecord.decode(dest.read_bytes(), tag)
    if prodrecord.tag_time(tag) != record.time:
        raise ValueError(f"its time {record.time} is not the one its tag names")
    return record

"""`mlspec gc --remote`: delete the remote's step runs that no kept key names (a dry run by
default). The kept keys come from git (mlspec.gitops.referenced, passed in by `api.gc`: `remote`
does not read git history); this module reads the remote.

Only step-run tags are candidates: `sha256-<64 hex>` whose manifest's config is a step-run
record (transfer.STEP_RUN). Every other tag (a production monitor's record, an OCI referrers
index, a tag someone else pushed) is never touched, and its blobs count as used. Manifests are
untrusted: one that does not parse, or whose digest a kept tag shares, is left alone.

Bytes freed: each deleted manifest's own bytes plus the blobs (config and layers, sizes as
their descriptors say) that no remaining manifest uses; a blob two deleted runs share counts in
both rows and once in the total. A file:// store then removes those blobs itself; a registry
deletes manifests by digest (HEAD the tag for its Docker-Content-Digest, DELETE) and reclaims
blob space in its own garbage collection (docker-registry: `registry garbage-collect CONFIG`).

Holds the run lock, as push and pull do. Run it when no push writes to the store: like every
registry's garbage collection, a push that finds a blob present just before it is removed
would leave a manifest whose blob is gone (its pull then reports `remote.missing`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlspec.errors import Outcome, say
from mlspec.remote.commands import failed, remote_of
from mlspec.remote.errors import RemoteError
from mlspec.remote.transfer import STEP_RUN, Store, open_store
from mlspec.remote.url import Remote
from mlspec.run.cache_gc import num_bytes
from mlspec.run.execute import interrupt_on_sigterm, run_lock
from mlspec.spec.loader import LoadedSpec
from mlspec.tables import table

STEP_TAG = re.compile(r"sha256-[0-9a-f]{64}")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
STEP_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
COMMIT = re.compile(r"[0-9a-f]{7,64}")
MAX_BLOB = 1 << 50  # a descriptor claiming more is not a size mlspec believes
MAX_LAYERS = 10_000


@dataclass
class Manifest:
    tag: str
    digest: str  # sha256 of the manifest's bytes: what a DELETE names
    size: int
    blobs: dict[str, int] | None  # digest -> size; None: unreadable
    step_run: bool = False
    step: str = "?"
    commit: str = ""


@dataclass
class Plan:
    remote: Remote
    drop: list[Manifest] = field(default_factory=list)
    kept: int = 0  # step runs kept
    other: int = 0  # tags that are not step runs
    notes: list[str] = field(default_factory=list)
    freed: dict[str, int] = field(default_factory=dict)  # blobs no remaining manifest uses
    blobs_known: bool = True  # every remaining manifest was readable

    def row_bytes(self, m: Manifest) -> int:
        return m.size + sum(s for d, s in (m.blobs or {}).items() if d in self.freed)

    @property
    def total(self) -> int:
        return sum(m.size for m in self.drop) + sum(self.freed.values())


def parse(tag: str, body: bytes) -> Manifest:
    """A manifest's descriptors and annotations, each field checked; unreadable: blobs None."""
    m = Manifest(tag, "sha256:" + hashlib.sha256(body).hexdigest(), len(body), None)
    try:
        doc = json.loads(body)
        descriptors = [doc["config"], *doc.get("layers", [])]
        if len(descriptors) > MAX_LAYERS + 1:
            return m
        blobs: dict[str, int] = {}
        for d in descriptors:
            digest, size = d["digest"], d["size"]
            if not (isinstance(digest, str) and DIGEST.fullmatch(digest) and type(size) is int
                    and 0 <= size <= MAX_BLOB):
                return m
            blobs[digest] = size
        m.step_run = doc["config"].get("mediaType") == STEP_RUN
        notes = doc.get("annotations") or {}
        step, commit = notes.get("dev.mlspec.step"), notes.get("dev.mlspec.commit")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return m
    m.blobs = blobs
    m.step = step if isinstance(step, str) and STEP_NAME.fullmatch(step) else "?"
    m.commit = commit if isinstance(commit, str) and COMMIT.fullmatch(commit) else ""
    return m


def plan(store: Store, remote: Remote, keep: set[str]) -> Plan:
    """Read every tag's manifest; the step runs no kept key names, and the blobs they free."""
    p = Plan(remote)
    manifests = []
    for tag in store.tags():
        try:
            body = store.get_manifest(tag)
        except RemoteError as err:
            if err.rule != "remote.corrupt":
                raise
            body = b""  # too big to read: unreadable, left alone
        if body is not None:  # None: deleted since the listing
            manifests.append(parse(tag, body))
    drop: list[Manifest] = []
    remaining: list[Manifest] = []
    for m in manifests:
        key = "sha256:" + m.tag[7:] if STEP_TAG.fullmatch(m.tag) else None
        if key is None or not m.step_run:
            p.other += 1
            if key is not None:
                p.notes.append(f"{m.tag[:19]}…: not a readable step run, left alone")
            remaining.append(m)
        elif key in keep:
            p.kept += 1
            remaining.append(m)
        else:
            drop.append(m)
    kept_digests = {m.digest for m in remaining}
    for m in drop:
        if m.digest in kept_digests:  # deleting by digest would take a kept tag with it
            p.notes.append(f"{m.tag[:19]}…: its manifest is also under a kept tag, left alone")
            p.kept += 1
        else:
            p.drop.append(m)
    used: set[str] = set()
    for m in remaining:
        if m.blobs is None:
            p.blobs_known = False
        used.update(m.blobs or {})
    for m in p.drop:
        p.freed.update({d: s for d, s in (m.blobs or {}).items() if d not in used})
    p.drop.sort(key=lambda m: (m.step, m.tag))
    return p


def collect(loaded: LoadedSpec, keep: dict[str, list[str]], kept_how: list[str],
            history: dict[str, Any], delete: bool) -> Outcome:
    """`mlspec gc --remote`: list (or, with delete, remove) the unreferenced step runs."""
    remote = remote_of(loaded)
    assert remote is not None
    with interrupt_on_sigterm(), run_lock(Path(loaded.root), say):
        deleted: list[Manifest] = []
        p = Plan(remote)
        try:
            store = open_store(remote, delete=delete)
            p = plan(store, remote, set(keep))
            if delete:
                _delete(store, p, deleted)
        except RemoteError as err:
            out = failed(err, _text(p, kept_how, deleted, delete) if p.drop else "")
            out.data = _data(p, history, deleted, delete)
            return out
    return Outcome(text=_text(p, kept_how, deleted, delete),
                   data=_data(p, history, deleted, delete))


def _delete(store: Store, p: Plan, deleted: list[Manifest]) -> None:
    for m in p.drop:
        if store.delete_manifest(m.tag, m.digest):
            deleted.append(m)
    if p.remote.kind != "file":
        return
    if not p.blobs_known:
        p.notes.append("blobs kept: a remaining manifest is unreadable, so which blobs it "
                       "uses is unknown")
        return
    from mlspec.remote.filestore import FileStore

    assert isinstance(store, FileStore)
    gone = {d for m in deleted for d in (m.blobs or {})}
    for digest in sorted(gone & set(p.freed)):
        store.delete_blob(digest)


def _text(p: Plan, kept_how: list[str], deleted: list[Manifest], delete: bool) -> str:
    lines = [f"remote: {p.remote}: {len(p.drop) + p.kept} step run(s), {p.other} other "
             "tag(s) left alone", *kept_how]
    lines += [f"note: {n}" for n in p.notes]
    if p.drop:
        rows = [[m.step, m.tag[7:19], m.commit[:12] or "?", num_bytes(p.row_bytes(m))]
                for m in p.drop]
        lines.append(table(["step", "key", "commit", "size"], rows).rstrip("\n"))
    what = f"{len(p.drop)} step run(s), {num_bytes(p.total)}"
    if not p.drop:
        lines.append(f"nothing to delete; kept {p.kept} step run(s)")
    elif not delete:
        lines.append(f"would delete {what}; kept {p.kept}; run `mlspec gc --remote --yes` to "
                     "delete them")
    else:
        lines.append(f"deleted {len(deleted)} of {what}; kept {p.kept}")
        if p.remote.kind != "file" and deleted:
            lines.append("the registry frees the blobs' space in its own garbage collection "
                         "(docker-registry: `registry garbage-collect CONFIG`; hosted "
                         "registries: their retention policy)")
    return "\n".join(lines)


def _data(p: Plan, history: dict[str, Any], deleted: list[Manifest], delete: bool
          ) -> dict[str, Any]:
    gone = {m.tag for m in deleted}
    return {"remote": str(p.remote), "deleted": delete, "history": history,
            "runs": [{"tag": m.tag, "key": "sha256:" + m.tag[7:], "step": m.step,
                      "commit": m.commit, "bytes": p.row_bytes(m), "manifest": m.digest,
                      **({"removed": m.tag in gone} if delete else {})} for m in p.drop],
            "bytes": p.total, "kept_runs": p.kept, "other_tags": p.other,
            "notes": list(p.notes)}

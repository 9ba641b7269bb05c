"""Promotion without retraining (issue 13): a release pins its step runs by manifest digest,
and the release pipeline pulls exactly those.

`pinner` is what `mlspec release` calls (through the api) once its checks pass: under the run
lock it pushes every up-to-date step run the remote lacks (mlspec.remote.commands' push), then
reads each run's manifest by its step-key tag and records the sha256 of its bytes — the digest
the registry addresses it by (a file:// store keeps a copy by digest too) — and tags it
`pin-<release>-<step>` (transfer.pin_tag) as well, so the pinned manifest stays tagged when
its key tag is pushed again (a registry's GC of untagged manifests would take it), and
`mlspec gc --remote`, which deletes only step-key tags, leaves it alone. Any failure is an
Outcome with the remote's exit code (mlspec.remote.errors), and the release makes no tag.

`pull_release` is `mlspec pull --release TAG`: every pinned run whose step is stale here is
fetched by digest (GET /v2/<name>/manifests/sha256:…, the bytes hashed to the digest, the
manifest annotated with the key the lock at the tag records) and restored through the local
cache's hash-checked, all-or-nothing restore. Steps already up to date are not fetched.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from mlspec.errors import Diagnostic, MlspecError, Outcome, say
from mlspec.gitops.pins import PinnedRun, Pins
from mlspec.remote.commands import _push, _scope, failed, remote_of
from mlspec.remote.errors import EXIT_MISSING, RemoteError
from mlspec.remote.transfer import Store, fetch_pinned, open_store, pin_tag, tag_of
from mlspec.run.cache import RestoreFailed
from mlspec.run.execute import interrupt_on_sigterm, run_lock
from mlspec.run.lock import Lock, read_lock
from mlspec.run.stepkey import stale_reasons
from mlspec.spec.loader import LoadedSpec


def pinner(loaded: LoadedSpec) -> Callable[[str], Pins | Outcome] | None:
    """None without a remote (the release then pins nothing, as before); else a callable of
    the release tag's name."""
    if remote_of(loaded, required=False) is None:
        return None

    def pin(release: str) -> Pins | Outcome:
        with interrupt_on_sigterm(), run_lock(Path(loaded.root), say):
            return _pin(loaded, release)

    return pin


def _pin(loaded: LoadedSpec, release: str) -> Pins | Outcome:
    pushed = _push(loaded, [], [])
    if pushed.code:
        return pushed
    if pushed.data["stale"]:
        stale = ", ".join(pushed.data["stale"])
        return Outcome(code=EXIT_MISSING, text=pushed.text, diagnostics=[Diagnostic.nowhere(
            f"cannot pin stale steps: {stale}", "remote.stale",
            "run `mlspec run` and commit mlspec.lock: a release pins up-to-date runs")])
    say(pushed.text)
    remote = remote_of(loaded)
    assert remote is not None
    lock = read_lock(Path(loaded.root)) or Lock()
    runs: dict[str, PinnedRun] = {}
    try:
        store = open_store(remote, push=True)
        for name in loaded.graph.order:
            entry = lock.steps.get(name)
            if entry is None:
                continue
            body = store.get_manifest(tag_of(entry.key))
            if body is None:
                raise RemoteError("remote.missing", f"step '{name}': {remote} lost its run "
                                  "right after the push", "retry the release")
            try:
                annotated = json.loads(body)["annotations"]["dev.mlspec.key"]
            except (ValueError, KeyError, TypeError):
                annotated = None
            if annotated != entry.key:
                raise RemoteError("remote.corrupt", f"step '{name}': the manifest {remote} "
                                  "holds under its key names another run",
                                  "delete that tag in the remote, then release again")
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            if not store.has_manifest(digest):
                store.put_manifest(digest, body)  # a file:// store pushed before digests
            store.put_manifest(pin_tag(release, name), body)
            runs[name] = PinnedRun(entry.key, digest)
    except RemoteError as err:
        return failed(err, pushed.text)
    return Pins(str(remote), runs)


def pull_release(loaded: LoadedSpec, tag: str, pins: Pins) -> Outcome:
    """Restore the runs `tag` pins (checked against the lock at the tag by
    mlspec.gitops.pins.release_pins) into this working tree."""
    lock = read_lock(Path(loaded.root)) or Lock()
    other = [s for s, r in pins.runs.items()
             if (e := lock.steps.get(s)) is None or e.key != r.key]
    if other:
        raise MlspecError([Diagnostic.nowhere(
            f"mlspec.lock here records other runs than {tag} for: {', '.join(other)}",
            "release.checkout", f"check out the release first: git checkout {tag}")])
    with interrupt_on_sigterm(), run_lock(Path(loaded.root), say):
        return _pull_release(loaded, tag, pins)


def _pull_release(loaded: LoadedSpec, tag: str, pins: Pins) -> Outcome:
    scope = _scope(loaded, [], [])
    remote, hasher, cache = scope.remote, scope.hasher, scope.cache
    restored: list[str] = []
    differ: list[str] = []
    current = 0
    stores: list[Store] = []
    if pins.remote != str(remote):
        say(f"· {tag} pinned its runs in {pins.remote}; fetching the same digests from "
             f"{remote}")
    try:
        for name, st, entry in scope.states():
            pin = pins.runs.get(name)
            if pin is None or entry is None:
                continue
            if not stale_reasons(st, entry, scope.lock, scope.env, hasher):
                current += 1
                continue
            if st.key != pin.key:
                differ.append(name)
                continue
            if not stores:
                stores.append(open_store(remote))
            run = fetch_pinned(stores[0], cache, pin.key, pin.digest, dict(entry.outs), remote,
                               f"{tag} pins for step '{name}'")
            try:
                cache.restore(run)
            except RestoreFailed as exc:
                raise RemoteError("remote.io", f"step '{name}': {exc}") from None
            restored.append(name)
    except RemoteError as err:
        return failed(err, _text(remote, tag, restored, differ, current))
    finally:
        hasher.save()
    out = Outcome(text=_text(remote, tag, restored, differ, current),
                  data={"remote": str(remote), "tag": tag, "restored": restored,
                        "differ": differ, "up_to_date": current, **pins.to_data()})
    if differ:
        out.code = EXIT_MISSING
        out.diagnostics = [Diagnostic.nowhere(
            f"not restored: {', '.join(differ)}: their inputs here are not {tag}'s",
            "release.differs", f"`mlspec status` says what changed; `git checkout {tag}` "
            "and `git status` show the edits")]
    return out


def _text(remote: object, tag: str, restored: list[str], differ: list[str],
          current: int) -> str:
    lines = [f"restored {s} from {remote} (pinned by {tag})" for s in restored]
    lines += [f"{s}: its inputs differ from {tag}'s, not restored" for s in differ]
    lines.append(f"{len(restored)} restored, {len(differ)} differ, {current} up to date")
    return "\n".join(lines)

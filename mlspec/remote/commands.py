"""`mlspec push`, `mlspec pull`, and the remote's two services to `run` and `status`: the pull
of a stale step before it executes, and whether the remote holds a stale step's run.

push: every up-to-date selected step (its key and outs match mlspec.lock) is put in the local
cache when it is not there yet, then uploaded (mlspec.remote.transfer) unless the remote holds
its key. pull: in graph order, every stale selected step whose current key the remote holds is
fetched into the local cache and restored from it; a restored step's downstream is looked at
with the restored outs, so one pull brings a whole chain. Output lists what moved.

Both hold the run lock (.mlspec/run.lock) as `mlspec run` and `mlspec gc` do: a pull writes
outs into the working tree and both write the local cache, so neither races a run, and `gc`
can remove the scratch directories a killed push or pull left behind.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mlspec.errors import Diagnostic, MlspecError, Outcome, say
from mlspec.remote.errors import EXIT_MISSING, RemoteError
from mlspec.remote.transfer import Store, fetch_run, open_store, push_run, scratch, tag_of
from mlspec.remote.url import ENV, EXAMPLES, BadRemote, Remote, configured
from mlspec.run.cache import Cache, RestoreFailed
from mlspec.run.execute import interrupt_on_sigterm, run_lock
from mlspec.run.hashing import Hasher, NotRegularFile
from mlspec.run.lock import Lock, Scalar, StepLock, read_lock
from mlspec.run.runner import parse_sets, select
from mlspec.run.stepkey import StepState, environment, stale_reasons, step_state
from mlspec.spec.loader import LoadedSpec


def remote_of(loaded: LoadedSpec, required: bool = True) -> Remote | None:
    try:
        remote = configured(loaded.spec.project.remote)
    except BadRemote as exc:
        raise MlspecError([Diagnostic.nowhere(f"{ENV}: {exc}", "remote.url",
                                              f"e.g. {EXAMPLES}")]) from None
    if remote is None and required:
        raise MlspecError([Diagnostic.nowhere(
            "no remote: set project.remote in the spec or MLSPEC_REMOTE", "remote.none",
            f"e.g. {EXAMPLES}")])
    return remote


def failed(err: RemoteError, done: str = "") -> Outcome:
    return Outcome(code=err.code, text=done,
                   diagnostics=[Diagnostic.nowhere(err.message, err.rule, err.hint)])


@dataclass
class _Scope:
    """What push and pull both read: the remote, the selected steps in graph order, and what
    judges them (the lock, the hasher, the environment) against the local cache."""

    loaded: LoadedSpec
    remote: Remote
    selection: list[str]
    lock: Lock
    hasher: Hasher
    env: dict[str, str]
    cache: Cache
    overrides: dict[str, dict[str, Scalar]]  # `--set` (a sweep variant's params)

    def states(self) -> Iterator[tuple[str, StepState, StepLock | None]]:
        """Each selected step's name, current state and lock entry, in graph order (a pull
        restores a step before its downstream is looked at)."""
        for name in self.selection:
            step = self.loaded.graph.steps[name]
            params = {**step.params, **self.overrides.get(name, {})}
            st = step_state(name, step, params, self.env, self.hasher)
            yield name, st, self.lock.steps.get(name)


def _scope(loaded: LoadedSpec, steps: list[str], sets: list[str] | None = None) -> _Scope:
    remote = remote_of(loaded)
    assert remote is not None
    selection = select(loaded, steps)  # `mlspec run`'s selection: named steps and their upstream
    root = Path(loaded.root)
    hasher = Hasher(root)
    return _Scope(loaded, remote, selection, read_lock(root) or Lock(), hasher,
                  environment(loaded, hasher), Cache(root),
                  parse_sets(loaded, sets or [], selection))


def _commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""



def push(loaded: LoadedSpec, steps: list[str], sets: list[str] | None = None) -> Outcome:
    with interrupt_on_sigterm(), run_lock(Path(loaded.root), say):
        return _push(loaded, steps, sets or [])


def pull(loaded: LoadedSpec, steps: list[str]) -> Outcome:
    with interrupt_on_sigterm(), run_lock(Path(loaded.root), say):
        return _pull(loaded, steps)


def _push(loaded: LoadedSpec, steps: list[str], sets: list[str]) -> Outcome:
    scope = _scope(loaded, steps, sets)
    remote, lock, hasher, cache = scope.remote, scope.lock, scope.hasher, scope.cache
    pushed: list[str] = []
    present: list[str] = []
    stale: list[str] = []
    try:
        store = open_store(remote, push=True)
        commit = _commit(Path(loaded.root))
        for name, st, entry in scope.states():
            if entry is None or stale_reasons(st, entry, lock, scope.env, hasher):
                stale.append(name)
                continue
            run = cache.lookup(entry.key)
            if run is None and store.has_manifest(tag_of(entry.key)):
                present.append(name)  # e.g. an upstream step a CI job downloaded
                continue
            if run is None:
                try:
                    trees = {out: hasher.tree(out) for out in entry.outs}
                except (OSError, NotRegularFile):
                    trees = None
                if trees is None or not cache.store(entry, trees) or \
                        (run := cache.lookup(entry.key)) is None:
                    raise RemoteError("remote.io", f"step '{name}': its outs could not be put "
                                      "in the local cache (changed while read, or disk full)")
            tmp = scratch(cache)
            try:
                (pushed if push_run(store, cache, run, name, commit, tmp) else present)\
                    .append(name)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except RemoteError as err:
        return failed(err, _push_text(remote, pushed, present, stale))
    finally:
        hasher.save()
    out = Outcome(text=_push_text(remote, pushed, present, stale),
                  data={"remote": str(remote), "pushed": pushed, "present": present,
                        "stale": stale})
    if steps and any(s in stale for s in steps):
        out.code = EXIT_MISSING
        out.diagnostics = [Diagnostic.nowhere(
            f"not pushed: {', '.join(s for s in steps if s in stale)} stale", "remote.stale",
            "run `mlspec run` first: only up-to-date steps are pushed")]
    return out


def _push_text(remote: Remote, pushed: list[str], present: list[str], stale: list[str]) -> str:
    lines = [f"pushed {s} to {remote}" for s in pushed]
    lines += [f"{s}: already in the remote" for s in present]
    lines += [f"{s}: stale, not pushed (run it first)" for s in stale]
    lines.append(f"{len(pushed)} pushed, {len(present)} already there, {len(stale)} stale")
    return "\n".join(lines)


def _pull(loaded: LoadedSpec, steps: list[str]) -> Outcome:
    scope = _scope(loaded, steps)
    remote, lock, hasher, cache = scope.remote, scope.lock, scope.hasher, scope.cache
    restored: list[str] = []
    missing: list[str] = []
    current = 0
    stores: list[Store] = []  # opened at the first stale step: a no-op pull stays local
    try:
        for name, st, entry in scope.states():
            if not stale_reasons(st, entry, lock, scope.env, hasher):
                current += 1
                continue
            expected = entry.outs if entry is not None and entry.key == st.key else None
            run = cache.lookup(st.key)
            if run is None or (expected is not None and run.entry.outs != expected):
                if not stores:
                    stores.append(open_store(remote))
                run = fetch_run(stores[0], cache, st.key, expected, remote)
            if run is None or sorted(run.entry.outs) != sorted(st.outs):
                missing.append(name)
                continue
            try:
                cache.restore(run)
            except RestoreFailed as exc:
                raise RemoteError("remote.io", f"step '{name}': {exc}") from None
            restored.append(name)
    except RemoteError as err:
        return failed(err, _pull_text(remote, restored, missing, current))
    finally:
        hasher.save()
    out = Outcome(text=_pull_text(remote, restored, missing, current),
                  data={"remote": str(remote), "restored": restored, "missing": missing,
                        "up_to_date": current})
    named = [s for s in steps if s in missing]
    if named:
        out.code = EXIT_MISSING
        out.diagnostics = [Diagnostic.nowhere(
            f"not in the remote: {', '.join(named)}", "remote.missing",
            "push it from a clone where it is up to date (`mlspec push`), or run it")]
    return out


def _pull_text(remote: Remote, restored: list[str], missing: list[str], current: int) -> str:
    lines = [f"restored {s} from {remote}" for s in restored]
    lines += [f"{s}: stale and not in the remote" for s in missing]
    lines.append(f"{len(restored)} restored, {len(missing)} not in the remote, "
                 f"{current} up to date")
    return "\n".join(lines)


def fetcher(loaded: LoadedSpec) -> Callable[[str], bool] | None:
    """For `mlspec run`: bring a stale step's run into the local cache before it would execute.
    A remote that fails is said once on stderr and not asked again: the step executes."""
    remote = remote_of(loaded, required=False)
    if remote is None:
        return None
    lock = read_lock(Path(loaded.root)) or Lock()
    expected = {e.key: e.outs for e in lock.steps.values()}
    cache = Cache(Path(loaded.root))
    broken: list[RemoteError] = []
    stores: list[Store] = []

    def fetch(key: str) -> bool:
        if broken:
            return False
        try:
            if not stores:
                stores.append(open_store(remote))
            return fetch_run(stores[0], cache, key, expected.get(key), remote) is not None
        except RemoteError as err:
            broken.append(err)
            sys.stderr.write(f"· remote: {err.message} ({err.rule}); running the steps "
                             "instead\n")
            return False

    return fetch


def availability(loaded: LoadedSpec) -> Callable[[str], bool | None] | None:
    """For `mlspec status`: whether the remote holds a key (None: it could not be asked)."""
    remote = remote_of(loaded, required=False)
    if remote is None:
        return None
    stores: list[Store] = []
    broken: list[RemoteError] = []

    def has(key: str) -> bool | None:
        if broken:
            return None
        try:
            if not stores:
                stores.append(open_store(remote))
            return stores[0].has_manifest(tag_of(key))
        except RemoteError as err:
            broken.append(err)
            return None

    return has

"""The model `mlspec serve` answers with, loaded only once mlspec.lock vouches for its bytes.

Unpickling a file runs code from it. So the file is read once, hashed, and compared with the
out hash that the lock of its repository records (`sha256:<hex>`; an out that is a directory
is compared through its manifest hash, see mlspec.run.hashing) BEFORE anything is unpickled;
the bytes that were checked are the bytes that are loaded. A model with no lock, no lock entry
or a different hash is refused unless the caller allows unlocked models explicitly.

The lock is read with the one hardened reader (mlspec.run.lock.read_lock): no aliases, tags or
deep nesting, so a hostile lock costs a few parse events, never memory.
"""

from __future__ import annotations

import hashlib
import io
import os
import queue
import stat as stat_mod
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlspec import layout
from mlspec.errors import Diagnostic, MlspecError
from mlspec.run.hashing import Hasher
from mlspec.run.lock import Lock, read_lock
from mlspec.run.sklearn_step import INSTALL_HINT, SKLEARN_MODULES

RULE = "serve.model"
UNLOCKED_HINT = ("train it with `mlspec run` in its repository (the lock records its hash), "
                 "or pass --allow-unlocked if you trust this file as you trust code you run")


@dataclass
class Served:
    """The loaded model and what /metadata reports about it."""

    model: Any  # an unpickled estimator: no static type exists
    path: Path
    sha256: str
    n_features: int | None
    metadata: dict[str, object] = field(default_factory=dict)


@dataclass
class Vouch:
    """What the lock of the model's repository says about the model's bytes."""

    lock_path: Path | None = None
    lock: Lock | None = None
    error: str | None = None  # the lock exists but cannot be read
    step: str | None = None  # the step whose out holds the model
    out: str | None = None  # that out: the model file itself or a directory above it
    recorded: str | None = None  # the hash the lock records for `out`
    actual: str | None = None  # the same hash computed now (with the bytes we loaded)

    @property
    def matches(self) -> bool:
        return self.recorded is not None and self.recorded == self.actual


def find_lock(model_path: Path) -> Path | None:
    """The mlspec.lock of the repository holding the model: the nearest one above it, never
    above the repository's root (the first folder with a .git)."""
    for folder in model_path.resolve().parents:
        candidate = folder / layout.LOCK
        if candidate.is_file():
            return candidate
        if (folder / ".git").exists():
            return None
    return None


class _RecordingHasher(Hasher):
    """Hashes a directory out without the stat cache (a cache could vouch for bytes it never
    read) and remembers each file's hash, to tie the manifest to the bytes we loaded."""

    def __init__(self, root: Path):
        super().__init__(root, use_cache=False)
        self.files: dict[str, str] = {}

    def _file(self, rel: str, full: str, st: os.stat_result) -> str:
        digest = super()._file(rel, full, st)
        self.files[rel] = digest
        return digest


def vouch(model_path: Path, digest: str) -> Vouch:
    """Compare the model's bytes (their `sha256:<hex>` digest) with its lock entry."""
    lock_path = find_lock(model_path)
    if lock_path is None:
        return Vouch()
    found = Vouch(lock_path=lock_path)
    try:
        found.lock = read_lock(lock_path.parent)
    except MlspecError as err:
        found.error = "; ".join(f"{layout.LOCK}:{d.line}:{d.col}: {d.message}"
                                for d in err.diagnostics)
        return found
    if found.lock is None:  # deleted since we looked
        return Vouch()
    root = lock_path.parent
    rel = model_path.resolve().relative_to(root).as_posix()
    entries = [(name, out.rstrip("/"), recorded)
               for name, step in sorted(found.lock.steps.items())
               for out, recorded in step.outs.items()]
    exact = [e for e in entries if e[1] == rel]
    above = sorted((e for e in entries if rel.startswith(e[1] + "/")), key=lambda e: -len(e[1]))
    if exact:
        found.step, found.out, found.recorded = exact[0]
        found.actual = digest
    elif above:
        found.step, found.out, found.recorded = above[0]
        hasher = _RecordingHasher(root)
        manifest = hasher.hash_path(found.out)
        # the manifest must list the model with the very bytes that were read and will load
        found.actual = manifest if hasher.files.get(rel) == digest else None
    return found


def refusal(path: Path, found: Vouch) -> Diagnostic:
    """Why the lock does not vouch for the model, as a diagnostic."""
    name = str(path)
    if found.lock_path is None:
        message = ("no mlspec.lock records this model, and unpickling it would run any code it "
                   "holds")
    elif found.error is not None:
        message = f"cannot check the model against {found.lock_path}: {found.error}"
    elif found.recorded is None:
        message = (f"{found.lock_path} records no out holding this model, and unpickling it "
                   "would run any code it holds")
    else:
        what = ("the model" if found.out == _rel(path, found)
                else f"the directory {found.out} holding the model")
        message = (f"{what} differs from what {found.lock_path} records for step "
                   f"'{found.step}' ({found.recorded}, now "
                   f"{found.actual or 'a manifest without these bytes'}): it changed after "
                   "`mlspec run` recorded it, and unpickling it would run any code it holds")
        return Diagnostic(name, 0, 0, message, RULE,
                          "rerun `mlspec run` to retrain and record it, or pass "
                          "--allow-unlocked if you trust this file as you trust code you run")
    return Diagnostic(name, 0, 0, message, RULE, UNLOCKED_HINT)


def _rel(path: Path, found: Vouch) -> str:
    assert found.lock_path is not None
    return path.resolve().relative_to(found.lock_path.parent).as_posix()


def load_model(path: Path, allow_unlocked: bool = False) -> Served:
    """Read, check against the lock, then unpickle a pickle or joblib file."""
    path = Path(path)
    try:
        st = path.stat()
        if not stat_mod.S_ISREG(st.st_mode):
            raise FileNotFoundError(path)
        data = path.read_bytes()
    except OSError:
        raise MlspecError([Diagnostic(str(path), 0, 0, "model file not found", RULE,
                                      "train it first: mlspec run")]) from None
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    found = vouch(path, digest)
    if not found.matches and not allow_unlocked:
        raise MlspecError([refusal(path, found)])
    try:
        model = _unpickle(path, data)
    except Exception as err:  # any unpickling failure is a bad model file
        if (isinstance(err, ModuleNotFoundError)
                and (err.name or "").partition(".")[0] in SKLEARN_MODULES):
            raise MlspecError([Diagnostic(
                str(path), 0, 0, f"mlspec serve needs scikit-learn to load this model: "
                f"{INSTALL_HINT} ({err.name} is not installed)", "serve.sklearn-missing",
                "the extra installs scikit-learn, numpy, scipy and joblib")]) from None
        raise MlspecError([Diagnostic(str(path), 0, 0,
                                      f"cannot load the model: {type(err).__name__}: {err}",
                                      RULE, "a pickle or joblib file of a fitted "
                                      "scikit-learn estimator")]) from None
    if not callable(getattr(model, "predict", None)):
        raise MlspecError([Diagnostic(str(path), 0, 0,
                                      f"{type(model).__name__} has no predict() method",
                                      RULE, "serve a fitted scikit-learn estimator")])
    n = getattr(model, "n_features_in_", None)
    n_features = int(n) if n is not None else None
    meta: dict[str, object] = {
        "model": path.name,
        "sha256": digest.removeprefix("sha256:"),
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "n_features_in": n_features,
    }
    classes = getattr(model, "classes_", None)
    if classes is not None:
        meta["classes"] = jsonable(classes)
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        meta["feature_names"] = jsonable(names)
    meta["lineage"] = lineage(found)
    return Served(model, path, digest.removeprefix("sha256:"), n_features, meta)


def _unpickle(path: Path, data: bytes) -> Any:
    """Load the bytes already checked (never the file again: it may have changed)."""
    import pickle

    if path.suffix in (".pkl", ".pickle"):
        try:
            return pickle.loads(data)
        except pickle.UnpicklingError:
            pass
    import joblib

    return joblib.load(io.BytesIO(data))


def lineage(found: Vouch) -> dict[str, object] | None:
    """Params, metrics and out hashes from the lock, for the step that produced the model."""
    if found.lock_path is None:
        return None
    if found.error is not None or found.lock is None:
        return {"lock": layout.LOCK, "error": f"unreadable lock: {found.error}"}
    lock = found.lock
    out: dict[str, object] = {"lock": layout.LOCK, "step": found.step,
                              "metrics": lock.metrics()}
    if found.step is not None:
        entry = lock.steps[found.step]
        out["params"] = dict(entry.params)
        out["outs"] = dict(entry.outs)
        out["matches_lock"] = found.matches
    return out


def jsonable(value: object) -> object:
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


class _Pending:
    __slots__ = ("done", "error", "result", "rows")

    def __init__(self, rows: list[list[float]]):
        self.rows = rows
        self.done = threading.Event()
        self.result: list[object] = []
        self.error: BaseException | None = None


class Batcher:
    """Runs every prediction on one worker thread, batching the requests that queue up while
    it is busy into one `predict` call (no added wait: a lone request runs at once). Under
    concurrency this amortises scikit-learn's per-call overhead; models need not be
    thread-safe. A failing batch is retried request by request, so one bad request fails
    alone."""

    def __init__(self, model: Any, max_rows: int = 4096):
        self.model = model
        self.max_rows = max_rows
        self.queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name="mlspec-predict", daemon=True)
        self.thread.start()

    def predict(self, rows: list[list[float]], timeout: float = 120) -> list[object]:
        item = _Pending(rows)
        self.queue.put(item)
        if not item.done.wait(timeout):
            raise TimeoutError("prediction timed out")
        if item.error is not None:
            raise item.error
        return item.result

    def close(self) -> None:
        self.queue.put(None)

    def _loop(self) -> None:
        while (first := self.queue.get()) is not None:
            batch, n = [first], len(first.rows)
            while n < self.max_rows:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self.queue.put(None)
                    break
                batch.append(item)
                n += len(item.rows)
            self._run(batch)

    def _run(self, batch: list[_Pending]) -> None:
        try:
            out = jsonable(self.model.predict([r for item in batch for r in item.rows]))
            if not isinstance(out, list):
                raise TypeError(f"predict() returned {type(out).__name__}, not a sequence")
            start = 0
            for item in batch:
                item.result = out[start:start + len(item.rows)]
                start += len(item.rows)
        except Exception as err:
            if len(batch) > 1:
                for item in batch:
                    self._run([item])
                return
            batch[0].error = err
        for item in batch:
            item.done.set()

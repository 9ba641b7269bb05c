"""Running one step's process: params in, prefixed output out, Ctrl-C ends the whole child.

Also the repository-wide run lock (fcntl on .mlspec/run.lock) that makes a second
`mlspec run` wait for the first instead of racing it on mlspec.lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mlspec import layout
from mlspec.errors import Diagnostic, MlspecError

PARAMS_FILE = layout.PARAMS_FILE
KILL_GRACE_S = 3.0


@contextlib.contextmanager
def run_lock(root: Path, say: Callable[[str], None]) -> Iterator[None]:
    """Hold .mlspec/run.lock for the duration; wait (bounded) when another run holds it."""
    import fcntl

    path = root / layout.RUN_LOCK
    path.parent.mkdir(exist_ok=True)
    timeout = float(os.environ.get("MLSPEC_LOCK_TIMEOUT", "3600"))
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            say(f"another `mlspec run` (pid {holder}) is running in this repository; "
                f"waiting for it to finish (up to {timeout:g}s)…")
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise MlspecError([Diagnostic(
                            layout.RUN_LOCK, 0, 0,
                            f"another `mlspec run` (pid {holder}) still holds the run lock "
                            f"after {timeout:g}s", "run.locked",
                            "wait for it to finish, or raise MLSPEC_LOCK_TIMEOUT")]) from None
                    time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock


@contextlib.contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into KeyboardInterrupt so a killed run cleans up like Ctrl-C."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError):  # not the main thread
            old[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def params_env(params: dict[str, Any]) -> dict[str, str]:
    env = {}
    for name, value in params.items():
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        env[f"MLSPEC_PARAM_{name.upper()}"] = text
    return env


def write_params(root: Path, params: dict[str, Any]) -> None:
    from mlspec.fsutil import write_atomic

    write_atomic(root / PARAMS_FILE, json.dumps(params, indent=2, sort_keys=True) + "\n")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End the child and everything it started (it leads its own process group): SIGINT as
    a terminal's Ctrl-C would, then SIGTERM, then SIGKILL, each after a grace period."""
    for sig, wait in ((signal.SIGINT, KILL_GRACE_S), (signal.SIGTERM, KILL_GRACE_S),
                      (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_process(name: str, argv: list[str] | str, root: Path, params: dict[str, Any],
                emit: Callable[[str], None], extra_env: dict[str, str] | None = None) -> int:
    """Run one step's process in the repository root, its output prefixed with the step name.

    Returns the exit code. KeyboardInterrupt ends the child's whole process group, then
    propagates, so nothing is recorded for an interrupted step.
    """
    write_params(root, params)
    # `python` in a step is the interpreter mlspec runs on (its venv first on PATH), so the
    # key's Python version is the one the step really ran with.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    env = {**os.environ, **params_env(params), "MLSPEC_STEP": name, "PYTHONUNBUFFERED": "1",
           "PATH": path, **(extra_env or {})}
    proc = subprocess.Popen(argv, shell=isinstance(argv, str), cwd=root, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    prefix = f"{name} | "
    try:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            emit(prefix + raw.decode(errors="replace").rstrip("\r\n"))
        return proc.wait()
    except BaseException:
        _stop(proc)
        raise
    finally:
        if proc.stdout is not None:
            proc.stdout.close()


def builtin_argv(config: dict[str, Any]) -> list[str]:
    """The process of a built-in scikit-learn step: this interpreter, module sklearn_step."""
    return [sys.executable, "-m", "mlspec.run.sklearn_step", json.dumps(config, sort_keys=True)]

"""Running one step's process: params in, prefixed output out, Ctrl-C ends the whole child.

Also the repository-wide run lock (fcntl on .mlspec/run.lock) that makes a second
`mlspec run` wait for the first instead of racing it on mlspec.lock.

A step's process leads its own session and process group. On Linux that leader is a guard
(mlspec.run.guard) started with `PR_SET_PDEATHSIG`, so the step and everything it started die
with `mlspec run` even when mlspec is SIGKILLed. While a step runs, the run lock also records
its process group: a process that escaped both (or a system without the death signal) is found
by the next `mlspec run`, which kills what is left of the group and waits for it to end before
it hashes or runs anything, so a survivor cannot write an out while the rerun records it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat as stat_mod
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mlspec import layout
from mlspec.errors import Diagnostic, MlspecError
from mlspec.fsutil import write_atomic
from mlspec.run import guard
from mlspec.run.guard import PARENT_ENV, kill_session, session_members

PARAMS_FILE = layout.PARAMS_FILE
KILL_GRACE_S = 3.0
REAP_TIMEOUT_S = 10.0
PR_SET_PDEATHSIG = 1
# A step's timeout_minutes is multiplied by this; the spec's unit stays the minute. Only a
# test changes it (in-process, to time a step out in a second): there is no user setting.
TIMEOUT_SCALE = 1.0

Spawned = Callable[[int | None, str], None]  # (process group or None when it ended, step)


def _lock_error(message: str, hint: str) -> MlspecError:
    return MlspecError([Diagnostic(layout.RUN_LOCK, 0, 0, message, "run.lock", hint)])


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "-"


class RunLock:
    """The open run lock: who holds it, and the process group of the step running now."""

    def __init__(self, fd: int):
        self.fd = fd

    def _write(self, text: str) -> None:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, text.encode(), 0)

    def spawned(self, pgid: int | None, step: str) -> None:
        line = f"{os.getpid()}\n"
        if pgid is not None:
            line += f"step {pgid} {_boot_id()} {step}\n"
        self._write(line)

    def reap(self, say: Callable[[str], None]) -> None:
        """End what is left of a step an earlier, killed `mlspec run` was running."""
        text = os.pread(self.fd, 4096, 0).decode(errors="replace")
        for line in text.splitlines():
            parts = line.split(" ", 3)
            if len(parts) != 4 or parts[0] != "step" or not parts[1].isdigit():
                continue
            pgid, boot, step = int(parts[1]), parts[2], parts[3]
            if boot != _boot_id() or pgid <= 1 or not session_members(pgid):
                continue
            say(f"step '{step}' left by an earlier `mlspec run` (killed?) is still running "
                f"(session {pgid}): ending it before this run")
            deadline = time.monotonic() + REAP_TIMEOUT_S
            while session_members(pgid):
                kill_session(pgid)
                if time.monotonic() >= deadline:
                    raise _lock_error(
                        f"step '{step}' of an earlier `mlspec run` (session {pgid}) is "
                        "still running and could not be ended", f"end it (pkill -9 -s {pgid}), "
                        "then run again")
                time.sleep(0.05)


def _open_lock(path: Path) -> int:
    where = layout.RUN_LOCK
    try:
        path.parent.mkdir(exist_ok=True)
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise _lock_error(f"cannot create {where}: {exc.strerror}",
                          f"make sure {layout.STATE} is a writable directory") from None
    if st is not None and not stat_mod.S_ISREG(st.st_mode):
        kind = "a directory" if stat_mod.S_ISDIR(st.st_mode) else "not a regular file"
        raise _lock_error(f"{where} is {kind}; mlspec keeps its run lock there",
                          f"remove it (rm -r {where}) and run again")
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
                       | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as exc:
        raise _lock_error(f"cannot open {where}: {exc.strerror}",
                          f"remove it (rm -r {where}) and run again") from None


@contextlib.contextmanager
def run_lock(root: Path, say: Callable[[str], None]) -> Iterator[RunLock]:
    """Hold .mlspec/run.lock for the duration; wait (bounded) when another run holds it."""
    import fcntl

    path = root / layout.RUN_LOCK
    timeout = float(os.environ.get("MLSPEC_LOCK_TIMEOUT", "3600"))
    fd = _open_lock(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            first = os.pread(fd, 64, 0).decode(errors="replace").split("\n", 1)[0]
            holder = first.strip() or "?"
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
        lock = RunLock(fd)
        lock.reap(say)
        lock.spawned(None, "")
        yield lock
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


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec function that sends the guard SIGUSR1 when mlspec dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def child() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGUSR1), 0, 0, 0)
        if os.getppid() != parent:  # mlspec died before the signal was armed
            os.kill(os.getpid(), signal.SIGKILL)

    return child


class StepTimedOut(Exception):
    """The step ran longer than its timeout; its whole session was stopped."""


def run_process(name: str, argv: list[str] | str, root: Path, params: dict[str, Any],
                emit: Callable[[str], None], extra_env: dict[str, str] | None = None,
                on_spawn: Spawned | None = None, timeout_minutes: float | None = None) -> int:
    """Run one step's process in the repository root, its output prefixed with the step name.

    Returns the exit code. KeyboardInterrupt ends the child's whole process group, then
    propagates, so nothing is recorded for an interrupted step. `on_spawn` learns the
    child's process group when it starts (and None when it has ended). After
    `timeout_minutes` the step is stopped as an interrupt stops it (SIGINT, SIGTERM,
    SIGKILL, then whatever is left of its session) and StepTimedOut is raised.
    """
    write_params(root, params)
    # `python` in a step is the interpreter mlspec runs on (its venv first on PATH), so the
    # key's Python version is the one the step really ran with.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    env = {**os.environ, **params_env(params), "MLSPEC_STEP": name, "PYTHONUNBUFFERED": "1",
           "PATH": path, **(extra_env or {})}
    full = ["/bin/sh", "-c", argv] if isinstance(argv, str) else list(argv)
    armed = _die_with_parent()
    if armed is not None:
        full = [sys.executable, "-I", "-S", guard.__file__, *full]
        env[PARENT_ENV] = str(os.getpid())
    proc = subprocess.Popen(full, cwd=root, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=armed)
    prefix = f"{name} | "
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        _stop(proc)
        kill_session(proc.pid)  # a child that kept the output pipe open ends too

    timer = None
    if timeout_minutes is not None:
        timer = threading.Timer(timeout_minutes * 60.0 * TIMEOUT_SCALE, expire)
        timer.daemon = True
    try:  # from here on, an interrupt (even while recording the spawn) stops the step
        if on_spawn is not None:
            on_spawn(proc.pid, name)
        if timer is not None:
            timer.start()
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            emit(prefix + raw.decode(errors="replace").rstrip("\r\n"))
        rc = proc.wait()
        if timer is not None:
            timer.cancel()
            timer.join()  # an expiry already under way finishes stopping the step
        if expired.is_set():
            raise StepTimedOut(name)
        return rc
    except StepTimedOut:
        raise
    except BaseException:
        if timer is not None:
            timer.cancel()
        _stop(proc)
        raise
    finally:
        if proc.stdout is not None:
            proc.stdout.close()
        if on_spawn is not None and proc.returncode is not None and not session_members(proc.pid):
            on_spawn(None, name)


def builtin_argv(config: dict[str, Any]) -> list[str]:
    """The process of a built-in scikit-learn step: this interpreter, module sklearn_step."""
    return [sys.executable, "-m", "mlspec.run.sklearn_step", json.dumps(config, sort_keys=True)]

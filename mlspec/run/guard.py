"""The guard: leads a step's process group and takes the whole group down when mlspec dies.

`mlspec run` starts `python -m mlspec.run.guard ARGV...` as the step's session leader with
`PR_SET_PDEATHSIG(SIGUSR1)`: when mlspec dies, even by SIGKILL, the kernel sends the guard
SIGUSR1 and the guard SIGKILLs its session, the step and everything it started (a shell
command's children included, which the death signal alone would not reach; a process that
left the session with setsid() is out of reach). Otherwise it only
waits: SIGINT and SIGTERM reach the step directly (they are sent to the group), and the guard
exits as the step did.
"""

from __future__ import annotations

# Run as a script with `python -I -S` (no site, no mlspec package): stdlib `os`, `signal` and
# `sys` only, so it starts in a few milliseconds.
import os
import signal
import sys
from types import FrameType

PARENT_ENV = "MLSPEC_GUARD_PARENT"


def session_members(sid: int) -> list[int]:
    """Live processes of session `sid` (a step's session: its guard's pid), from /proc; a
    process that made its own process group is still in the session."""
    if not os.path.isdir("/proc"):
        try:
            os.killpg(sid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [sid]
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="utf-8", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            members.append(int(name))
    return members


def kill_session(sid: int) -> None:
    """SIGKILL every process of session `sid` (the caller last, when it is in it)."""
    me = os.getpid()
    for pid in [p for p in session_members(sid) if p != me]:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
    try:
        os.killpg(sid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return


def _kill_group(signum: int, frame: FrameType | None) -> None:
    kill_session(os.getsid(0))


def _ignore(signum: int, frame: FrameType | None) -> None:
    """The group's SIGINT/SIGTERM is for the step; the guard outlives it to report its end."""


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGUSR1, _kill_group)
    parent = os.environ.pop(PARENT_ENV, "")
    if parent.isdigit() and os.getppid() != int(parent):
        _kill_group(signal.SIGUSR1, None)  # mlspec died before the guard was ready
    if not argv:
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _ignore)  # Python handlers: exec gives the step the defaults back
    pid = os.fork()
    if pid == 0:  # the step
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            sys.stderr.write(f"cannot run {argv[0]}: {exc.strerror}\n")
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):  # end as the step ended (killed by a signal)
        end = os.WTERMSIG(status)
        signal.signal(end, signal.SIG_DFL)
        os.kill(os.getpid(), end)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

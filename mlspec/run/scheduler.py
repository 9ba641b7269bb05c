"""`mlspec run --jobs N`: independent steps at once, in DAG order, with a sequential run's result.

The session (skip / restore / execute, hashing, the lock, the cache) stays single-threaded:
a worker thread holds the session's mutex for everything a step does except while its
process runs (Session.spawn is swapped for `Pool.spawn`, which releases the mutex for that
time). So hashes, cache copies and lock writes happen one at a time, and the lock, whose
entries are sorted, is byte-identical to a sequential run's. Built-in scikit-learn steps run
as a child process like any command (execute.builtin_argv), so they parallelise the same way.

- A step starts when every upstream step in the run has finished successfully.
- Steps share the project's params.json (mlspec writes it before each step), so two steps
  whose params differ never run at the same time; equal params (e.g. none) do.
- On a failure no new step starts; steps already running finish (and are recorded, as
  steps finished before a failure are in a sequential run). The failure raised is the
  first failed step in graph order: the exit code and diagnostics of a sequential run.
- While steps run in parallel, their output goes to `.mlspec/logs/<step>.log` instead of the
  terminal; the failing step's last lines are printed at the end. A run that is a chain
  (no two steps independent) or `--jobs 1` runs sequentially and streams output as before.
- Ctrl-C (or SIGTERM/SIGHUP, which mlspec turns into an interrupt) stops every running
  step's process group (SIGINT, SIGTERM, SIGKILL) and records nothing for those steps.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from mlspec import layout
from mlspec.errors import Diagnostic, MlspecError
from mlspec.run.execute import Spawned, run_process, stop_groups
from mlspec.run.progress import Progress

if TYPE_CHECKING:
    from mlspec.run.session import Session

LOGS = layout.LOGS
TAIL_LINES = 20


def default_jobs() -> int:
    """The number of cores this process may use. Steps then share them by their
    `resources.cpus` (see Pool.run)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def check_jobs(jobs: int | None) -> int:
    if jobs is None:
        return default_jobs()
    if jobs < 1:
        raise MlspecError([Diagnostic.nowhere(
            f"--jobs {jobs}: the number of steps run at once must be at least 1", "run.jobs",
            "e.g. --jobs 4 (default: the number of cores)")])
    return jobs


def cpus(session: Session, step: str) -> int:
    """The cores a step (or each variant of a swept step) keeps busy: `resources.cpus`."""
    return session.loaded.graph.steps[step].resources.cpus


class StepTimes(Progress):
    """Progress whose per-step durations hold while steps overlap, and whose lines never
    mix (one line per step start and finish)."""

    def __init__(self, total: int):
        super().__init__(total)
        self._t0s: dict[str, float] = {}
        self._say_mutex = threading.Lock()

    def say(self, text: str) -> None:
        with self._say_mutex:
            super().say(text)

    def start(self, name: str, what: str) -> None:
        super().start(name, what)
        self._t0s[name] = self.t0

    def done(self, name: str, ok: bool, detail: str = "") -> None:
        self.t0 = self._t0s.pop(name, self.t0)
        super().done(name, ok, detail)


def is_chain(session: Session, names: list[str]) -> bool:
    """Whether each step (in graph order) needs the one before it: nothing to overlap."""
    graph = session.loaded.graph
    return all(a in graph.closure_up([b]) for a, b in itertools.pairwise(names))


def run(session: Session, names: list[str], jobs: int) -> None:
    """Run `names` (in graph order) as Session.run does, up to `jobs` at once."""
    if jobs <= 1 or len(names) < 2 or is_chain(session, names) or \
            all(cpus(session, n) >= jobs for n in names):
        session.run(names)
        return
    session.progress.batch(len(names))
    wanted = set(names)
    needs = {n: [u for u in session.loaded.graph.upstream[n] if u in wanted] for n in names}
    pool = Pool(session, jobs)
    spawn, session.spawn = session.spawn, pool.spawn
    try:
        pool.run(names, needs, session.step, lambda n: cpus(session, n))
    finally:
        session.spawn = spawn
        order = {n: i for i, n in enumerate(session.loaded.graph.order)}
        for listed in (session.ran, session.skipped, session.restored):
            listed.sort(key=lambda n: order.get(n, len(order)))


class Pool:
    """Runs tasks (a run's steps, or sweep variants) on up to `jobs` threads. Each task holds
    the pool's mutex, except while a process it started through `spawn` runs."""

    def __init__(self, session: Session, jobs: int):
        self.session, self.jobs = session, jobs
        self.mutex = threading.Lock()  # the session's state; released while a process runs
        self.cond = threading.Condition()  # guards what follows
        self.params: dict[str, tuple[Path, str]] = {}  # log -> (root, params.json text)
        self.groups: dict[str, int] = {}  # log -> process group, of processes running
        self.stopping = False
        self.events: queue.Queue[tuple[str, BaseException | None]] = queue.Queue()
        self.local = threading.local()  # .task: the task a worker thread runs

    # -- the main thread -------------------------------------------------------------------
    def run(self, tasks: list[str], needs: dict[str, list[str]],
            work: Callable[[str], None], weight: Callable[[str], int] = lambda _: 1) -> None:
        """Run every task once its needs are done; on a failure start no new task, let the
        running ones finish, and raise the first failed task's error (in `tasks` order).

        `jobs` is a number of cores and a task keeps `weight(task)` of them busy (a step's
        `resources.cpus`): a ready task starts while the running ones leave it room, the first
        in `tasks` order that fits. A task wider than `jobs` counts as `jobs`, so it runs
        alone rather than never."""
        pending = list(tasks)
        done: set[str] = set()
        failed: dict[str, BaseException] = {}
        active: dict[str, threading.Thread] = {}
        width = {n: min(max(1, weight(n)), self.jobs) for n in tasks}
        try:
            while True:
                while not failed:
                    free = self.jobs - sum(width[n] for n in active)
                    ready = next((n for n in pending if width[n] <= free
                                  and all(u in done for u in needs[n])), None)
                    if ready is None:
                        break
                    pending.remove(ready)
                    active[ready] = threading.Thread(target=self._work, args=(ready, work),
                                                     name=f"mlspec-{ready}", daemon=True)
                    active[ready].start()
                if not active:
                    break
                name, exc = self._next()
                active.pop(name).join()
                if exc is None:
                    done.add(name)
                else:
                    failed[name] = exc
        except BaseException:  # Ctrl-C / SIGTERM: stop every running step, record nothing
            self.stop(lambda: any(t.is_alive() for t in active.values()))
            for t in active.values():
                t.join()
            raise
        if failed:
            first = min(failed, key=tasks.index)
            exc = failed[first]
            step = getattr(exc, "step", first)
            self._tail(self.log(first, step), step)
            raise exc

    def _next(self) -> tuple[str, BaseException | None]:
        while True:  # a timeout keeps the main thread responsive to signals
            with contextlib.suppress(queue.Empty):
                return self.events.get(timeout=0.1)

    def stop(self, running: Callable[[], bool]) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        self.session.progress.say(f"interrupted: stopping {len(self.groups)} running step(s)")

        def groups() -> list[int]:
            with self.cond:
                return list(self.groups.values())

        stop_groups(groups, running)

    def log(self, task: str, step: str) -> str:
        """The log of a step's process (repository-relative): a sweep variant's steps log
        under the variant's name."""
        return f"{LOGS}/{step}.log" if task == step else f"{LOGS}/{task}/{step}.log"

    def _tail(self, rel: str, step: str) -> None:
        try:
            text = (self.session.root / rel).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return
        lines = text.splitlines()
        if not lines:
            return
        say = self.session.progress.say
        say(f"--- last {min(len(lines), TAIL_LINES)} line(s) of {rel} ---")
        for line in lines[-TAIL_LINES:]:
            say(f"{step} | {line}")

    # -- worker threads ----------------------------------------------------------------------
    def _work(self, name: str, work: Callable[[str], None]) -> None:
        self.local.task = name
        try:
            with self.mutex:
                if self.stopping:
                    raise KeyboardInterrupt
                work(name)
        except BaseException as exc:  # reported to the main thread, raised there
            self.events.put((name, exc))
        else:
            self.events.put((name, None))

    def spawn(self, name: str, argv: list[str] | str, root: Path, params: dict[str, Any],
              emit: Callable[[str], None], on_spawn: Spawned | None = None,
              timeout_minutes: float | None = None) -> int:
        """Session.spawn under the pool: the session's mutex is released while the process
        runs; its output goes to the step's log."""
        text = json.dumps(params, sort_keys=True)
        rel = self.log(getattr(self.local, "task", name), name)
        self.mutex.release()
        try:
            with self.cond:  # steps in one directory share its params.json
                while not self.stopping and any(r == root and t != text
                                                for r, t in self.params.values()):
                    self.cond.wait(0.1)
                if self.stopping:
                    raise KeyboardInterrupt
                self.params[rel] = (root, text)
            try:
                log = self.session.root / rel
                log.parent.mkdir(parents=True, exist_ok=True)
                with open(log, "w", encoding="utf-8") as fh:
                    rc = run_process(name, argv, root, params, self._writer(name, fh),
                                     on_spawn=self._spawned(rel, on_spawn),
                                     timeout_minutes=timeout_minutes)
            finally:
                with self.cond:
                    del self.params[rel]
                    self.groups.pop(rel, None)
                    self.cond.notify_all()
            if self.stopping:  # stopped by an interrupt: whatever it wrote is not recorded
                raise KeyboardInterrupt
            return rc
        finally:
            self.mutex.acquire()

    @staticmethod
    def _writer(name: str, fh: IO[str]) -> Callable[[str], None]:
        cut = len(f"{name} | ")

        def write(line: str) -> None:
            fh.write(line[cut:] + "\n")
            fh.flush()

        return write

    def _spawned(self, rel: str, outer: Spawned | None) -> Spawned:
        def spawned(pgid: int | None, step: str) -> None:
            with self.cond:
                if pgid is not None:
                    self.groups[rel] = pgid
                    if self.stopping:  # started as the interrupt came: end it at once
                        with contextlib.suppress(ProcessLookupError, PermissionError):
                            os.killpg(pgid, signal.SIGKILL)
            if outer is not None:  # the run lock: a variant's step as "<variant>/<step>"
                outer(pgid, rel[len(LOGS) + 1:-len(".log")])

        return spawned


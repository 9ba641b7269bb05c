"""`mlspec run --jobs N`: independent steps at once, with a sequential run's lock and failures.

Real git repositories, the real `mlspec` console script, real step processes. Overlap is
proved by a barrier (each of b and c waits for the other to have started), not by timing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import BIN, mlspec
from run_helpers import make_repo

from mlspec import api
from mlspec.run import execute, guard

DIAMOND = """
version: 1
project: {name: diamond}
model:
  steps:
    a:
      command: python src/step.py a
      deps: [src/step.py]
      outs: [out/a.txt]
    b:
      command: exec python src/step.py b out/a.txt  # no shell in between: b sees SIGINT
      deps: [src/step.py, out/a.txt]
      params: {PB}
      outs: [out/b.txt]
    c:
      command: python src/step.py c out/a.txt
      deps: [src/step.py, out/a.txt]
      params: {PC}
      outs: [out/c.txt]
    d:
      command: python src/step.py d out/b.txt out/c.txt
      deps: [src/step.py, out/b.txt, out/c.txt]
      outs: [out/d.txt]
"""

# SYNC (a directory outside the repository): b and c each mark their start there, then wait
# for the other's mark; FAIL_<STEP>: exit with that code; HANG_<STEP>: write the out, then
# sleep that long (IGNORE_INT_<STEP>: ignoring SIGINT; EXIT0_ON_INT_<STEP>: exiting 0 on
# it). Step output records params.json.
STEP = """
import json, os, pathlib, signal, sys, time
name, ins = sys.argv[1], sys.argv[2:]
env = lambda k: os.environ.get(k + "_" + name.upper())
sync = os.environ.get("SYNC")
if sync and name in "bc":
    pathlib.Path(sync, name + ".started").write_text(str(os.getpid()))
    other = pathlib.Path(sync, ("c" if name == "b" else "b") + ".started")
    deadline = time.monotonic() + 20
    while not other.exists():
        if time.monotonic() > deadline:
            print("the other step never started alongside", name)
            sys.exit(9)
        time.sleep(0.01)
time.sleep(0.2)  # a step that ran alongside another one with other params would see them
params = json.loads(pathlib.Path("params.json").read_text())
print(name, "params", params)
print(name, "boom" if env("FAIL") else "ok")
if env("FAIL"):
    sys.exit(int(env("FAIL")))
text = "".join(pathlib.Path(p).read_text() for p in ins) + name + json.dumps(params) + "\\n"
pathlib.Path("out").mkdir(exist_ok=True)
pathlib.Path("out", name + ".txt").write_text(text)
if env("HANG"):
    if env("IGNORE_INT"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if env("EXIT0_ON_INT"):
        signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    pathlib.Path(sync or ".", name + ".pid").write_text(str(os.getpid()))
    time.sleep(float(env("HANG")))
"""


def diamond(path: Path, pb: str = "{}", pc: str = "{}") -> Path:
    spec = DIAMOND.replace("{PB}", pb).replace("{PC}", pc)
    return make_repo(path, spec, {"src/step.py": STEP})


def test_parallel_lock_is_byte_identical_to_sequential(tmp_path: Path) -> None:
    seq, par = diamond(tmp_path / "seq"), diamond(tmp_path / "par")
    sync = tmp_path / "sync"
    sync.mkdir()
    r1 = mlspec("run", "--jobs", "1", cwd=seq)
    assert r1.returncode == 0, r1.stdout + r1.stderr
    r4 = mlspec("run", "--jobs", "4", cwd=par, env={"SYNC": str(sync)})
    assert r4.returncode == 0, r4.stdout + r4.stderr
    assert (sync / "b.started").exists() and (sync / "c.started").exists()  # they overlapped
    assert (par / "mlspec.lock").read_bytes() == (seq / "mlspec.lock").read_bytes()
    for step in "abcd":
        rec = f".mlspec/steps/{step}.lock"
        assert (par / rec).read_bytes() == (seq / rec).read_bytes()
    assert r4.stdout == r1.stdout  # "ran 4, skipped 0 (up to date); mlspec.lock updated"
    # one line per step start and finish; the steps' own output went to their logs
    lines = r4.stderr.splitlines()
    assert sum(line.startswith("▶ ") for line in lines) == 4
    assert sum(line.startswith("✓ ") for line in lines) == 4
    assert "b | " not in r4.stderr and "b ok" in (par / ".mlspec/logs/b.log").read_text()
    assert "b | b ok" in r1.stderr  # --jobs 1 streams output as before
    # a rerun is a no-op either way, and --json lists steps in graph order
    again = mlspec("run", "--jobs", "4", "--json", cwd=par)
    assert json.loads(again.stdout)["skipped"] == ["a", "b", "c", "d"], again.stdout


def test_a_failure_starts_nothing_new_and_reports_as_sequential(tmp_path: Path) -> None:
    env = {"FAIL_C": "3"}
    seq, par = diamond(tmp_path / "seq"), diamond(tmp_path / "par")
    r1 = mlspec("run", "--jobs", "1", "--json", cwd=seq, env=env)
    r2 = mlspec("run", "--jobs", "2", "--json", cwd=par, env=env)
    assert r1.returncode == r2.returncode == 1, r2.stdout + r2.stderr
    d1, d2 = json.loads(r1.stdout), json.loads(r2.stdout)
    assert d2["failed"] == d1["failed"] == "c"
    assert d2["error"] == d1["error"] == "its command exited with code 3"
    assert "▶ d" not in r2.stderr  # downstream of the failure never started
    # b ran alongside c and finished: recorded, as a sequential run records it
    lock = (par / "mlspec.lock").read_text()
    assert "  b:" in lock and "  c:" not in lock
    assert (par / "mlspec.lock").read_bytes() == (seq / "mlspec.lock").read_bytes()
    # the failing step's log tail comes at the end, after every step line
    tail = r2.stderr[r2.stderr.index("last "):]
    assert "c | c boom" in tail and "▶" not in tail, r2.stderr


def test_steps_with_different_params_never_share_params_json(tmp_path: Path) -> None:
    repo = diamond(tmp_path / "r", pb="{lr: 1}", pc="{lr: 2}")
    r = mlspec("run", "--jobs", "4", cwd=repo)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (repo / "out/b.txt").read_text().endswith('b{"lr": 1}\n')
    assert (repo / "out/c.txt").read_text().endswith('c{"lr": 2}\n')


def test_force_verify_and_cache_restore_under_jobs(tmp_path: Path) -> None:
    repo = diamond(tmp_path / "r")
    assert mlspec("run", "-j", "2", cwd=repo).returncode == 0
    locked = (repo / "mlspec.lock").read_bytes()
    for step in "abcd":
        (repo / "out" / f"{step}.txt").unlink()
    r = mlspec("run", "-j", "2", "--json", cwd=repo)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["restored"] == ["a", "b", "c", "d"]
    r = mlspec("run", "-j", "2", "--force", "--json", cwd=repo)
    assert r.returncode == 0 and json.loads(r.stdout)["ran"] == ["a", "b", "c", "d"], r.stderr
    r = mlspec("run", "-j", "2", "--verify", cwd=repo)
    assert r.returncode == 0 and "outs and metrics match" in r.stdout, r.stdout + r.stderr
    assert (repo / "mlspec.lock").read_bytes() == locked


def test_jobs_must_be_positive(tmp_path: Path) -> None:
    r = mlspec("run", "--jobs", "0", cwd=diamond(tmp_path / "r"))
    assert r.returncode == 2 and "--jobs 0" in r.stderr + r.stdout, r.stdout + r.stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (not yet reaped by its parent) is not running
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_ctrl_c_stops_every_running_step_and_records_none(tmp_path: Path) -> None:
    repo = diamond(tmp_path / "r")
    sync = tmp_path / "sync"
    sync.mkdir()
    assert mlspec("run", "a", cwd=repo).returncode == 0
    before = (repo / "mlspec.lock").read_bytes()
    exe = BIN / "mlspec"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mlspec"]
    env = {**os.environ, "SYNC": str(sync), "HANG_B": "60", "HANG_C": "60",
           "IGNORE_INT_C": "1",  # c ignores SIGINT: it takes the SIGTERM that follows
           "EXIT0_ON_INT_B": "1"}  # b "succeeds" when interrupted: still not recorded
    proc = subprocess.Popen([*cmd, "run", "--jobs", "2"], cwd=repo, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ((sync / "b.pid").exists() and (sync / "c.pid").exists()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the steps never started"
            time.sleep(0.05)
        time.sleep(0.1)  # both pid files are written
        pids = [int((sync / f"{s}.pid").read_text()) for s in "bc"]
        held = (repo / ".mlspec/run.lock").read_text()
        assert " b\n" in held and " c\n" in held, held  # both groups are on record
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    assert time.monotonic() - t0 < 15
    assert not any(_alive(p) for p in pids), pids
    # b and c wrote their outs before they hung: neither is recorded
    assert (repo / "out/b.txt").exists()
    assert (repo / "mlspec.lock").read_bytes() == before
    assert "▶ d" not in err


def test_timeout_stops_its_step_while_the_others_finish(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    spec = DIAMOND.replace("{PB}", "{}").replace(
        "      params: {PC}\n", "      params: {}\n      resources: {timeout_minutes: 1}\n")
    repo = make_repo(tmp_path / "r", spec, {"src/step.py": STEP})
    monkeypatch.setattr(execute, "TIMEOUT_SCALE", 1 / 60)  # a "minute" lasts a second
    monkeypatch.setenv("HANG_C", "60")
    t0 = time.monotonic()
    out = api.run(repo / "mlspec.yaml", [], force=False, sets=[], verify=False, sweep=False,
                  base=None, gates=False, jobs=2)
    assert time.monotonic() - t0 < 30
    assert out.code == 1, out
    [diag] = out.diagnostics
    assert diag.rule == "run.timeout" and "step 'c'" in diag.message
    lock = (repo / "mlspec.lock").read_text()
    assert "  b:" in lock and "  c:" not in lock and "  d:" not in lock
    assert not _alive(int((repo / "c.pid").read_text()))


SWEPT = DIAMOND.replace("{PB}", "{lr: 1}\n      sweep: {lr: [3, 1, 2]}").replace(
    "{PC}", "{}").replace("      outs: [out/b.txt]\n",
                          "      outs: [out/b.txt]\n      metrics: out/m_b.json\n").replace(
    "version: 1\n", "version: 1\ndesign:\n  hypothesis: lr matters\n  metrics:\n"
    "    lr: {goal: maximize, threshold: 0, primary: true}\n")
# VARIANT_SYNC: a variant of b (run in a scratch copy) waits for all three to have started
# FAIL_LR: the variant of b with that lr exits 3
SWEPT_STEP = STEP + """
if name == "b" and os.environ.get("FAIL_LR") == str(params["lr"]):
    sys.exit(3)
if name == "b":
    pathlib.Path("out/m_b.json").write_text(json.dumps({"lr": params["lr"]}))
    vsync = os.environ.get("VARIANT_SYNC")
    if vsync and "mlspec-variant-" in os.getcwd():
        pathlib.Path(vsync, str(params["lr"])).write_text("")
        deadline = time.monotonic() + 20
        while len(list(pathlib.Path(vsync).iterdir())) < 3:
            if time.monotonic() > deadline:
                sys.exit("the other variants never started alongside")
            time.sleep(0.01)
"""


def test_sweep_under_jobs_records_what_a_sequential_sweep_does(tmp_path: Path) -> None:
    seq = make_repo(tmp_path / "seq", SWEPT, {"src/step.py": SWEPT_STEP})
    par = make_repo(tmp_path / "par", SWEPT, {"src/step.py": SWEPT_STEP})
    r1 = mlspec("run", "--sweep", "--no-gates", "--json", "--jobs", "1", cwd=seq)
    vsync = tmp_path / "vsync"
    vsync.mkdir()
    r2 = mlspec("run", "--sweep", "--no-gates", "--json", "--jobs", "3", cwd=par,
                env={"VARIANT_SYNC": str(vsync)})
    assert r1.returncode == r2.returncode == 0, r1.stderr + r2.stderr
    d1, d2 = json.loads(r1.stdout), json.loads(r2.stdout)
    assert d2["sweeps"]["b"]["best"] == {"lr": 3}
    assert d2["sweeps"] == d1["sweeps"]
    assert sorted(p.name for p in vsync.iterdir()) == ["1", "2", "3"]  # all three at once
    # the variants ran in scratch copies sharing the local cache: the spec's own variant
    # (lr 1) comes back from it instead of running a fourth time
    assert d2["restored"] == ["b", "d"], d2
    assert (par / "mlspec.lock").read_bytes() == (seq / "mlspec.lock").read_bytes()
    for variant in sorted((seq / ".mlspec/sweeps/b").iterdir()):
        assert (par / ".mlspec/sweeps/b" / variant.name).read_bytes() == variant.read_bytes()
    assert (par / "out/b.txt").read_text() == (seq / "out/b.txt").read_text()  # the spec's lr


def test_a_failing_variant_under_jobs_fails_as_in_a_sequential_sweep(tmp_path: Path) -> None:
    seq = make_repo(tmp_path / "seq", SWEPT, {"src/step.py": SWEPT_STEP})
    par = make_repo(tmp_path / "par", SWEPT, {"src/step.py": SWEPT_STEP})
    r1 = mlspec("run", "--sweep", "--no-gates", "--jobs", "1", cwd=seq, env={"FAIL_LR": "2"})
    r2 = mlspec("run", "--sweep", "--no-gates", "--jobs", "3", cwd=par, env={"FAIL_LR": "2"})
    assert r1.returncode == r2.returncode == 1, r1.stderr + r2.stderr

    def errors(r: subprocess.CompletedProcess[str]) -> list[str]:
        return [line for line in (r.stdout + r.stderr).splitlines() if "failed" in line]

    assert errors(r2) == errors(r1) and errors(r1), r1.stderr + r2.stderr
    # the failing variant's log ends the output; the ones that succeeded are kept, as the
    # ones before the failure are in a sequential run (lr 3 and 1 come before lr 2)
    assert "--- last" in r2.stderr and ".mlspec/logs/b@lr=2/b.log" in r2.stderr, r2.stderr
    assert (sorted(p.name for p in (par / ".mlspec/sweeps/b").iterdir())
            == sorted(p.name for p in (seq / ".mlspec/sweeps/b").iterdir()))
    assert len(list((seq / ".mlspec/sweeps/b").iterdir())) == 2
    assert (par / "mlspec.lock").read_bytes() == (seq / "mlspec.lock").read_bytes()


def test_ctrl_c_stops_every_running_variant_and_removes_their_copies(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", SWEPT, {"src/step.py": SWEPT_STEP})
    scratch = tmp_path / "tmp"  # where the variants' scratch copies go (TMPDIR)
    scratch.mkdir()
    exe = BIN / "mlspec"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mlspec"]
    env = {**os.environ, "HANG_B": "60", "TMPDIR": str(scratch)}
    proc = subprocess.Popen([*cmd, "run", "--sweep", "--no-gates", "--jobs", "3"], cwd=repo,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        groups: dict[str, int] = {}
        while len(groups) < 3:  # the run lock names each running variant's step
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the variants never ran at once"
            time.sleep(0.05)
            run_lock = repo / ".mlspec/run.lock"
            held = run_lock.read_text() if run_lock.exists() else ""
            groups = {p[3]: int(p[1]) for p in (line.split(" ", 3) for line in
                                                 held.splitlines()) if p[0] == "step"}
        assert sorted(groups) == ["b@lr=1/b", "b@lr=2/b", "b@lr=3/b"], groups
        assert len(list(scratch.iterdir())) == 3
        time.sleep(0.3)  # each variant's b has written its out and sleeps
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    assert time.monotonic() - t0 < 15
    assert not any(guard.session_members(g) for g in groups.values()), groups
    assert list(scratch.iterdir()) == []  # every scratch copy removed
    assert not (repo / ".mlspec/sweeps/b").exists() or not any(
        (repo / ".mlspec/sweeps/b").iterdir())  # no variant recorded
    lock = (repo / "mlspec.lock").read_text()
    assert "  c:" in lock and "  b:" not in lock and "sweeps" not in lock, lock


WIDE = """
version: 1
project: {name: wide}
model:
  steps:
    x:
      command: python src/span.py x
      deps: [src/span.py]
      outs: [out/x.txt]
      resources: {cpus: CPUS}
    y:
      command: python src/span.py y
      deps: [src/span.py]
      outs: [out/y.txt]
      resources: {cpus: CPUS}
"""

# each step records when it started and ended (wall clock, in SPANS outside the repository)
SPAN = """
import os, pathlib, sys, time
name = sys.argv[1]
start = time.time()
time.sleep(0.6)
pathlib.Path("out").mkdir(exist_ok=True)
pathlib.Path("out", name + ".txt").write_text(name)
pathlib.Path(os.environ["SPANS"], name).write_text(f"{start} {time.time()}")
"""


@pytest.mark.parametrize(("cpus", "jobs", "overlap"), [(2, "4", True), (2, "3", False),
                                                       (8, "2", False), (1, "2", True)])
def test_steps_share_the_jobs_cores_by_their_resources_cpus(tmp_path: Path, cpus: int,
                                                            jobs: str, overlap: bool) -> None:
    repo = make_repo(tmp_path / "repo", WIDE.replace("CPUS", str(cpus)), {"src/span.py": SPAN})
    spans = tmp_path / "spans"
    spans.mkdir()
    r = mlspec("run", "--jobs", jobs, cwd=repo, env={"SPANS": str(spans)})
    assert r.returncode == 0, r.stdout + r.stderr
    (x0, x1), (y0, y1) = (map(float, (spans / s).read_text().split()) for s in "xy")
    assert (x0 < y1 and y0 < x1) is overlap, (x0, x1, y0, y1)
    # a step wider than --jobs runs alone instead of never; both ran either way
    assert json.loads(mlspec("run", "--json", cwd=repo).stdout)["skipped"] == ["x", "y"]

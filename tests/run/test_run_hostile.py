"""`mlspec run`/`status` against hostile files and processes: a killed run's survivors, FIFOs,
sockets, huge or deep or non-finite metrics, broken state files, outs that escape the repo."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import BIN, mlspec
from run_helpers import TOY_FILES, TOY_SPEC, make_repo

from mlspec.run.lock import Lock

SLOW_SPEC = """
version: 1
project: {name: slow}
model:
  steps:
    write:
      command: COMMAND
      deps: [src/slow.py]
      outs: [out/result.txt]
"""

SLOW_PY = """
import os, pathlib, sys, time
pathlib.Path("out/pid").write_text(str(os.getpid()))
with open("out/result.txt", "w") as fh:
    fh.write("half")
    fh.flush()
    time.sleep(float(sys.argv[1]))
    fh.write(" and whole")
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _start(repo: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([str(BIN / "mlspec"), "run", "--no-gates"], cwd=repo,
                            env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    marker = repo / "out/pid"
    deadline = time.monotonic() + 30
    while not (marker.exists() and marker.read_text()):
        assert time.monotonic() < deadline, "the slow step never started"
        time.sleep(0.05)
    time.sleep(0.2)
    return proc, int(marker.read_text())


def _recorded_out(repo: Path) -> str:
    return Lock.parse((repo / "mlspec.lock").read_text()).steps["write"].outs["out/result.txt"]


def _sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_sigkill_of_run_kills_the_step(tmp_path: Path) -> None:
    spec = SLOW_SPEC.replace("COMMAND", "python src/slow.py ${MLSPEC_TEST_SLEEP:-0}")
    repo = make_repo(tmp_path / "r", spec, {"src/slow.py": SLOW_PY})
    proc, child = _start(repo, {"MLSPEC_TEST_SLEEP": "8"})
    proc.kill()
    proc.communicate(timeout=30)
    assert _wait_gone(child, 3), "the step's process outlived a SIGKILLed `mlspec run`"
    assert (repo / "out/result.txt").read_text() == "half"
    r = mlspec("run", "--no-gates", cwd=repo, env={"MLSPEC_TEST_SLEEP": "0"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert _recorded_out(repo) == _sha("half and whole")


def test_rerun_reaps_a_survivor_before_it_runs(tmp_path: Path) -> None:
    # the guard (the step's session leader) killed along with mlspec, say by the OOM killer:
    # the shell's child survives both, and the rerun must find it through the run lock
    spec = SLOW_SPEC.replace("COMMAND", "python src/slow.py ${MLSPEC_TEST_SLEEP:-0} & wait")
    repo = make_repo(tmp_path / "r", spec, {"src/slow.py": SLOW_PY})
    proc, child = _start(repo, {"MLSPEC_TEST_SLEEP": "8"})
    session = int(Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[3])
    assert session != proc.pid
    os.kill(session, signal.SIGKILL)
    proc.kill()
    proc.communicate(timeout=30)
    time.sleep(0.3)
    try:
        assert _alive(child)
        r = mlspec("run", "--no-gates", cwd=repo, env={"MLSPEC_TEST_SLEEP": "0"})
        assert r.returncode == 0, r.stdout + r.stderr
        assert not _alive(child), "the rerun left the earlier run's step running"
        assert "still running" in r.stderr
        time.sleep(0.2)
        assert (repo / "out/result.txt").read_text() == "half and whole"
        assert _recorded_out(repo) == _sha("half and whole")
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)


def test_sigkill_of_run_kills_a_shell_steps_children(tmp_path: Path) -> None:
    spec = SLOW_SPEC.replace("COMMAND", "python src/slow.py ${MLSPEC_TEST_SLEEP:-0} & wait")
    repo = make_repo(tmp_path / "r", spec, {"src/slow.py": SLOW_PY})
    proc, child = _start(repo, {"MLSPEC_TEST_SLEEP": "8"})
    proc.kill()
    proc.communicate(timeout=30)
    assert _wait_gone(child, 3), "a shell step's child outlived a SIGKILLed `mlspec run`"


def _toy(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "r", TOY_SPEC, TOY_FILES)


def _no_traceback(r: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in r.stderr + r.stdout, r.stderr


@pytest.mark.parametrize("cmd", [["status"], ["run", "--no-gates"]])
def test_fifo_dep_is_refused_without_blocking(tmp_path: Path, cmd: list[str]) -> None:
    repo = _toy(tmp_path)
    (repo / "src/input.txt").unlink()
    os.mkfifo(repo / "src/input.txt")
    r = mlspec(*cmd, cwd=repo, timeout=20)
    _no_traceback(r)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "src/input.txt" in r.stderr and "FIFO" in r.stderr, r.stderr
    assert "make" in r.stderr


def test_fifo_out_is_refused_without_blocking(tmp_path: Path) -> None:
    files = dict(TOY_FILES)
    files["src/make.py"] = "import os\nos.mkfifo('out/made.txt')\n"
    repo = make_repo(tmp_path / "r", TOY_SPEC, files)
    r = mlspec("run", "--no-gates", cwd=repo, timeout=20)
    _no_traceback(r)
    assert r.returncode in (1, 2) and "out/made.txt" in r.stdout + r.stderr
    assert "FIFO" in r.stdout + r.stderr
    assert not (repo / "mlspec.lock").exists() or "make" not in (repo / "mlspec.lock").read_text()
    st = mlspec("status", cwd=repo, timeout=20)
    _no_traceback(st)
    assert "FIFO" in st.stderr


def test_socket_dep_is_refused(tmp_path: Path) -> None:
    repo = _toy(tmp_path)
    (repo / "src/input.txt").unlink()
    # AF_UNIX paths are short: bind from inside the directory
    old = os.getcwd()
    os.chdir(repo / "src")
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind("input.txt")
    finally:
        os.chdir(old)
    try:
        r = mlspec("run", "--no-gates", cwd=repo, timeout=20)
        _no_traceback(r)
        assert r.returncode == 2 and "socket" in r.stderr, r.stderr
    finally:
        s.close()


def _score_writes(text: str) -> dict[str, str]:
    files = dict(TOY_FILES)
    files["src/score.py"] = ("import pathlib, sys\n"
                             f"pathlib.Path('out/metrics.json').write_text({text})\n")
    return files


def test_deeply_nested_metrics_fail_the_step_clearly(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", TOY_SPEC,
                     _score_writes("'{\"a\":' * 5000 + '1' + '}' * 5000"))
    r = mlspec("run", "--no-gates", cwd=repo)
    _no_traceback(r)
    assert r.returncode == 1 and "nested" in r.stdout, r.stdout + r.stderr


def test_huge_metrics_file_is_refused_before_reading(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", TOY_SPEC,
                     _score_writes("'{\"score\": 0.9, \"pad\": \"' + 'x' * (11 << 20) + '\"}'"))
    r = mlspec("run", "--no-gates", cwd=repo)
    _no_traceback(r)
    assert r.returncode == 1 and "MB" in r.stdout and "out/metrics.json" in r.stdout, r.stdout


@pytest.mark.parametrize("value", ["Infinity", "1e999", "NaN", "-Infinity"])
def test_non_finite_metric_is_refused(tmp_path: Path, value: str) -> None:
    repo = make_repo(tmp_path / "r", TOY_SPEC, _score_writes(f"'{{\"score\": {value}}}'"))
    r = mlspec("run", cwd=repo)
    _no_traceback(r)
    assert r.returncode == 1, r.stdout
    assert "score" in r.stdout and "finite" in r.stdout, r.stdout


def test_non_finite_metric_in_a_lock_fails_its_gate(tmp_path: Path) -> None:
    from mlspec.gitops.gates import judge, verdict
    from mlspec.spec.gates import Gate, parse_gate

    g = parse_gate("score >= 0.5")
    assert isinstance(g, Gate)
    for bad in (float("inf"), float("nan")):
        assert judge(g, bad, None)[1] is False
        assert "not a finite number" in verdict(g, bad, None).reason
    rel = parse_gate("score >= baseline - 0.5")
    assert isinstance(rel, Gate)
    assert judge(rel, 0.9, float("-inf"))[1] is False
    assert "baseline" in verdict(rel, 0.9, float("-inf")).reason


def test_two_baseline_gates_on_one_metric_are_both_kept(tmp_path: Path) -> None:
    spec = TOY_SPEC.replace("    - score >= baseline - 0.01\n",
                            "    - score >= baseline - 0.5\n    - score >= baseline + 0.05\n")
    repo = make_repo(tmp_path / "r", spec, TOY_FILES)
    r = mlspec("run", "--json", cwd=repo)
    data = json.loads(r.stdout)
    gates = [g["gate"] for g in data["gates"]]
    assert gates == ["score >= 0.5", "score >= baseline - 0.5", "score >= baseline + 0.05"]


@pytest.mark.parametrize("name", ["hashes.json", "run.lock"])
def test_state_file_replaced_by_a_directory(tmp_path: Path, name: str) -> None:
    repo = _toy(tmp_path)
    (repo / ".mlspec" / name).mkdir(parents=True)
    for f in (repo / "src").iterdir():  # old enough to be cached: the cache gets written
        os.utime(f, (time.time() - 60, time.time() - 60))
    r = mlspec("run", "--no-gates", cwd=repo)
    _no_traceback(r)
    if name == "hashes.json":  # a cache: ignored
        assert r.returncode == 0, r.stderr
        assert mlspec("status", cwd=repo).returncode == 0
    else:
        assert r.returncode == 2 and ".mlspec/run.lock" in r.stderr, r.stderr


@pytest.mark.parametrize("entry", ['5', '"x"', '[1, 2]', '["a", "b", "c", "d", "e"]', 'null',
                                   '{"a": 1}'])
def test_malformed_hash_cache_entry_is_ignored(tmp_path: Path, entry: str) -> None:
    repo = _toy(tmp_path)
    assert mlspec("run", "--no-gates", cwd=repo).returncode == 0
    cache = repo / ".mlspec/hashes.json"
    data = json.loads(cache.read_text()) if cache.exists() else {"version": 1, "files": {}}
    data["files"] = {k: json.loads(entry) for k in
                     ["src/make.py", "src/input.txt", "out/made.txt", "src/score.py"]}
    cache.write_text(json.dumps(data))
    for cmd in (["status"], ["run", "--no-gates"]):
        r = mlspec(*cmd, cwd=repo)
        _no_traceback(r)
        assert r.returncode == 0, r.stderr
    assert "ran 0, skipped 2" in r.stdout


def test_out_turned_into_a_symlink_out_of_the_repo_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("outside\n")
    files = dict(TOY_FILES)
    files["src/make.py"] = f"import os\nos.symlink({str(secret)!r}, 'out/made.txt')\n"
    repo = make_repo(tmp_path / "r", TOY_SPEC, files)
    r = mlspec("run", "--no-gates", cwd=repo)
    _no_traceback(r)
    assert r.returncode == 1, r.stdout
    assert "out/made.txt" in r.stdout and str(secret) in r.stdout, r.stdout
    assert not (repo / "mlspec.lock").exists() or "make" not in (repo / "mlspec.lock").read_text()


def test_fifo_inside_an_out_directory_does_not_hang_its_checks(tmp_path: Path) -> None:
    spec = TOY_SPEC.replace("      outs: [out/made.txt]\n",
                            "      outs: [out/made.txt, out/tables/]\n"
                            "      checks: {min_rows: 1}\n")
    files = dict(TOY_FILES)
    files["src/make.py"] += ("import os\nos.makedirs('out/tables', exist_ok=True)\n"
                             "pathlib.Path('out/tables/a.csv').write_text('x\\n1\\n')\n"
                             "os.mkfifo('out/tables/b.csv')\n")
    repo = make_repo(tmp_path / "r", spec, files)
    r = mlspec("run", "--no-gates", cwd=repo, timeout=30)
    _no_traceback(r)
    assert r.returncode == 0, r.stdout + r.stderr


def test_step_record_replaced_by_a_directory_is_a_diagnostic(tmp_path: Path) -> None:
    repo = _toy(tmp_path)
    (repo / ".mlspec/steps/make.lock").mkdir(parents=True)
    r = mlspec("run", "--no-gates", cwd=repo)
    _no_traceback(r)
    assert r.returncode == 2 and ".mlspec/steps/make.lock" in r.stderr, r.stderr


def test_fifos_in_mlspec_state_do_not_hang(tmp_path: Path) -> None:
    repo = _toy(tmp_path)
    (repo / ".mlspec/steps").mkdir(parents=True)
    os.mkfifo(repo / ".mlspec/hashes.json")
    os.mkfifo(repo / ".mlspec/steps/make.lock")
    for cmd in (["status"], ["run", "--no-gates"]):
        r = mlspec(*cmd, cwd=repo, timeout=30)
        _no_traceback(r)
    assert r.returncode in (0, 2), r.stderr

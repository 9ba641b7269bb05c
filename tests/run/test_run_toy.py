"""`mlspec run` on tiny script pipelines: verify, checks, gates, baselines, locking, signals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from conftest import BIN, git, mlspec
from run_helpers import TOY_FILES, TOY_SPEC, make_repo

from mlspec.run.lock import Lock


def _lock(repo: Path) -> Lock:
    return Lock.parse((repo / "mlspec.lock").read_text())


def test_verify_catches_a_nondeterministic_step(tmp_path: Path) -> None:
    spec = TOY_SPEC.replace("deps: [src/make.py, src/input.txt]",
                            "deps: [src/make.py, src/input.txt]\n      outs: [out/noise.txt]"
                            ).replace("      outs: [out/made.txt]\n", "")
    spec = spec.replace("outs: [out/noise.txt]", "outs: [out/made.txt, out/noise.txt]")
    files = dict(TOY_FILES)
    files["src/make.py"] += ("import os\npathlib.Path('out/noise.txt').write_bytes("
                             "os.urandom(8))\n")
    repo = make_repo(tmp_path / "r", spec, files)
    assert mlspec("run", "--no-gates", cwd=repo).returncode == 0
    before = (repo / "mlspec.lock").read_bytes()
    r = mlspec("run", "--verify", "--no-gates", cwd=repo)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "verify: the rerun differs from mlspec.lock" in r.stdout
    row = next(x for x in r.stdout.splitlines() if "out out/noise.txt" in x)
    assert row.split()[0] == "make"
    assert "out out/made.txt" not in r.stdout  # deterministic outs agree
    assert (repo / "mlspec.lock").read_bytes() == before  # --verify never rewrites the lock


def test_verify_metric_tolerance(tmp_path: Path) -> None:
    files = dict(TOY_FILES)
    files["src/score.py"] = """
        import json, pathlib, random
        n = int(pathlib.Path("out/made.txt").read_text())
        s = n / 10 + random.uniform(-0.001, 0.001)
        pathlib.Path("out/metrics.json").write_text(json.dumps({"score": s}))
    """
    spec = TOY_SPEC.replace("primary: true}", "primary: true, tolerance: 0.01}")
    repo = make_repo(tmp_path / "r", spec, files)
    assert mlspec("run", "--no-gates", cwd=repo).returncode == 0
    ok = mlspec("run", "--verify", "--no-gates", cwd=repo)
    assert ok.returncode == 0, ok.stdout
    strict = make_repo(tmp_path / "s", TOY_SPEC, files)
    assert mlspec("run", "--no-gates", cwd=strict).returncode == 0
    bad = mlspec("run", "--verify", "--no-gates", cwd=strict)
    assert bad.returncode == 1 and "metric score" in bad.stdout


def test_failing_data_check_fails_the_step_with_a_table(tmp_path: Path) -> None:
    spec = TOY_SPEC.replace("outs: [out/made.txt]", "outs: [out/made.txt, out/table.csv]\n"
                            "      checks: {min_rows: 3, columns: {a: int, b: float, c: str}, "
                            "max_null_fraction: 0.1}")
    files = dict(TOY_FILES)
    files["src/make.py"] += ("pathlib.Path('out/table.csv').write_text("
                             "'a,b\\n1,2.5\\nx,\\n')\n")
    repo = make_repo(tmp_path / "r", spec, files)
    r = mlspec("run", cwd=repo)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "step 'make' failed: data checks failed" in r.stdout
    rows = {line.split("  ")[1].strip(): line for line in r.stdout.splitlines()
            if line.startswith("out/table.csv")}
    assert rows["min_rows"].split()[-1] == "FAIL" and ">= 3" in rows["min_rows"]
    assert rows["column a"].split()[-1] == "FAIL" and "'x'" in rows["column a"]
    assert rows["column b"].split()[-1] == "pass"
    assert rows["column c"].split()[-1] == "FAIL" and "missing" in rows["column c"]
    assert rows["max_null_fraction"].split()[-1] == "FAIL"
    assert not (repo / "mlspec.lock").exists()  # nothing recorded for a failed step
    assert "▶ score" not in r.stderr  # downstream never ran


def test_failing_gate_exits_1_with_its_table(tmp_path: Path) -> None:
    spec = TOY_SPEC.replace("threshold: 0.5", "threshold: 0.9")
    repo = make_repo(tmp_path / "r", spec, TOY_FILES)
    r = mlspec("run", cwd=repo)
    assert r.returncode == 1, r.stdout + r.stderr
    row = next(x for x in r.stdout.splitlines() if x.startswith("score >= 0.9"))
    assert row.split()[-4:] == ["0.6000", "0.9000", "—", "FAIL"]
    assert "gates failed" in r.stdout
    assert _lock(repo).steps["score"].metrics == {"score": 0.6}  # the run itself is recorded
    assert mlspec("run", "--no-gates", cwd=repo).returncode == 0


def test_baseline_gate_against_the_base_commit(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", TOY_SPEC, TOY_FILES)
    first = mlspec("run", cwd=repo)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "(baseline: none)" in first.stdout  # first commit: skipped, not passed
    git("add", "mlspec.lock", cwd=repo)
    git("commit", "-q", "-m", "baseline 0.6", cwd=repo)
    git("checkout", "-q", "-b", "feature", cwd=repo)
    (repo / "src/input.txt").write_text("2\n")  # score drops to 0.4
    spec = TOY_SPEC.replace("threshold: 0.5", "threshold: 0.3")
    (repo / "mlspec.yaml").write_text(spec.lstrip())
    git("commit", "-q", "-am", "feature: less input", cwd=repo)
    r = mlspec("run", cwd=repo)
    assert r.returncode == 1, r.stdout + r.stderr
    row = next(x for x in r.stdout.splitlines() if x.startswith("score >= baseline - 0.01"))
    assert row.split()[-4:] == ["0.4000", "0.5900", "0.6000", "FAIL"]
    base = git("rev-parse", "main", cwd=repo)
    assert f"(baseline: {base[:12]})" in r.stdout
    # an improvement passes against the same base
    (repo / "src/input.txt").write_text("4\n")
    ok = mlspec("run", "--json", cwd=repo)
    assert ok.returncode == 0, ok.stdout
    gates = {g["gate"]: g for g in json.loads(ok.stdout)["gates"]}
    assert gates["score >= baseline - 0.01"]["baseline"] == 0.6
    assert gates["score >= baseline - 0.01"]["verdict"] == "pass"
    # an explicit --base that does not exist is bad input
    assert mlspec("run", "--base", "nope", cwd=repo).returncode == 2


def test_two_concurrent_runs_do_not_corrupt_the_lock(tmp_path: Path) -> None:
    files = dict(TOY_FILES)
    files["src/make.py"] = "import time\ntime.sleep(1.5)\n" + files["src/make.py"].lstrip()
    repo = make_repo(tmp_path / "r", TOY_SPEC, files)
    exe = str(BIN / "mlspec")
    procs = [subprocess.Popen([exe, "run", "--no-gates"], cwd=repo, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    summaries = sorted(o[0].strip().splitlines()[0] for o in outs)
    assert summaries == ["ran 0, skipped 2 (up to date)",
                         "ran 2, skipped 0 (up to date); mlspec.lock updated"]
    assert any("waiting for it to finish" in o[1] for o in outs)
    assert set(_lock(repo).steps) == {"make", "score"}


def _start_and_wait(repo: Path, marker: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([str(BIN / "mlspec"), "run", "--no-gates"], cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline, "the slow step never started"
        time.sleep(0.05)
    return proc


def _alive(pid: int) -> bool:
    """Running (a zombie awaiting an absent reaper in a container does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def test_interrupted_run_ends_the_child_and_keeps_the_lock(tmp_path: Path) -> None:
    files = dict(TOY_FILES)
    files["src/score.py"] = """
        import os, pathlib, time
        pathlib.Path("out/pid").write_text(str(os.getpid()))
        time.sleep(60)
    """
    repo = make_repo(tmp_path / "r", TOY_SPEC, files)
    for sig in (signal.SIGINT, signal.SIGTERM):
        proc = _start_and_wait(repo, repo / "out/pid")
        child = int((repo / "out/pid").read_text())
        proc.send_signal(sig)
        # the step sleeps 60 s: a run that ignored the signal would end 0 after it, not 130.
        # (30 s once timed out in a loaded CI run; the cause is not understood yet)
        _, err = proc.communicate(timeout=90)
        assert proc.returncode == 130, err
        assert "interrupted" in err
        time.sleep(0.2)
        assert not _alive(child), "the step's process outlived the run"
        lock = _lock(repo)  # parses: never torn
        assert set(lock.steps) == {"make"}  # the finished step is kept, the interrupted not
        (repo / "out/pid").unlink()
    # a SIGKILL of mlspec itself cannot corrupt the lock either (atomic writes)
    proc = _start_and_wait(repo, repo / "out/pid")
    child = int((repo / "out/pid").read_text())
    proc.kill()
    proc.communicate(timeout=30)
    os.kill(child, signal.SIGKILL)
    assert set(_lock(repo).steps) == {"make"}


def test_set_unknown_param_and_unknown_step_are_usage_errors(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", TOY_SPEC, TOY_FILES)
    r = mlspec("run", "--set", "nope=1", cwd=repo)
    assert r.returncode == 2 and "no step in this run has a param 'nope'" in r.stderr + r.stdout
    r = mlspec("run", "scor", cwd=repo)
    assert r.returncode == 2 and "did you mean 'score'" in r.stderr + r.stdout


def test_corrupt_lock_is_a_clear_error(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", TOY_SPEC, TOY_FILES)
    (repo / "mlspec.lock").write_text("steps: [oops\n")
    r = mlspec("status", cwd=repo)
    assert r.returncode == 2
    assert "mlspec.lock" in r.stderr + r.stdout


def test_force_reruns_only_the_named_step(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", TOY_SPEC, TOY_FILES)
    assert mlspec("run", "--no-gates", cwd=repo).returncode == 0
    r = mlspec("run", "score", "--force", "--no-gates", cwd=repo)
    assert "ran 1, skipped 1" in r.stdout and "▶ score" in r.stderr
    r = mlspec("run", "--force", "--no-gates", cwd=repo)
    assert "ran 2, skipped 0" in r.stdout


def test_missing_out_is_a_reason_and_identical_rebuilds_stop_there(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", TOY_SPEC, TOY_FILES)
    assert mlspec("run", "--no-gates", cwd=repo).returncode == 0
    (repo / "out/made.txt").unlink()
    status = json.loads(mlspec("status", "--json", cwd=repo).stdout)
    assert status["steps"]["make"]["reasons"] == ["out out/made.txt is missing"]
    assert status["stale"] == ["make", "score"]  # score: its upstream is stale
    shutil.rmtree(repo / ".mlspec/cache")  # no local cache: make really reruns
    r = mlspec("run", "--no-gates", cwd=repo)
    # make writes the same bytes again, so score's inputs are unchanged: it is skipped
    assert "ran 1, skipped 1" in r.stdout, r.stdout + r.stderr
    # a param change is named with its old and new value
    (repo / "mlspec.yaml").write_text(TOY_SPEC.replace("factor: 2", "factor: 5").lstrip())
    out = mlspec("status", cwd=repo).stdout
    assert "param factor: 2 → 5" in out and "2 of 2 step(s) stale" in out


def test_ci_jobs_pass_steps_on_through_artifacts(tmp_path: Path) -> None:
    """A step job's outs + .mlspec/steps/STEP.lock make the step fresh in the next job."""
    import shutil

    repo = make_repo(tmp_path / "r", TOY_SPEC, TOY_FILES)
    job1 = tmp_path / "job1"
    shutil.copytree(repo, job1)
    assert mlspec("run", "make", "--no-gates", cwd=job1).returncode == 0
    job2 = tmp_path / "job2"  # a fresh checkout plus job1's artifacts
    shutil.copytree(repo, job2)
    shutil.copytree(job1 / "out", job2 / "out")
    shutil.copytree(job1 / ".mlspec/steps", job2 / ".mlspec/steps")
    r = mlspec("run", "score", "--no-gates", cwd=job2)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ran 1, skipped 1" in r.stdout and "▶ make" not in r.stderr
    assert set(_lock(job2).steps) == {"make", "score"}  # the record was adopted
    # the gates job: every artifact restored, nothing reruns, the gates are evaluated
    job3 = tmp_path / "job3"
    shutil.copytree(repo, job3)
    shutil.copytree(job2 / "out", job3 / "out")
    shutil.copytree(job2 / ".mlspec/steps", job3 / ".mlspec/steps")
    g = mlspec("run", cwd=job3)
    assert g.returncode == 0, g.stdout + g.stderr
    assert g.stdout.startswith("ran 0, skipped 2") and "score >= 0.5" in g.stdout
    # a record whose outs were not restored does not count
    job4 = tmp_path / "job4"
    shutil.copytree(repo, job4)
    shutil.copytree(job1 / ".mlspec/steps", job4 / ".mlspec/steps")
    assert "ran 2" in mlspec("run", "--no-gates", cwd=job4).stdout

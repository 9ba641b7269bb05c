"""The local cache of step outs (.mlspec/cache): restore instead of re-executing, the CI sweep
fan-out that trains each param set once, `mlspec gc`, the size cap, `--verify STEP`."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
from conftest import git, mlspec
from run_helpers import make_repo

from mlspec import layout
from mlspec.run.lock import Lock

# Every step appends its name to $COUNTER (outside the repository): executions are counted
# there, restores in the log.
FAN_SPEC = """
version: 1
project: {name: fan}
design:
  hypothesis: more trees score higher
  metrics:
    score: {goal: maximize, threshold: 0.1, primary: true}
model:
  steps:
    prepare:
      command: python src/prepare.py
      deps: [src/prepare.py]
      outs: [data/]
    train:
      command: python src/train.py
      deps: [src/train.py, data/]
      params: {n_estimators: 100}
      sweep: {n_estimators: [50, 100]}
      outs: [model/model.txt]
    evaluate:
      command: python src/evaluate.py
      deps: [src/evaluate.py, model/model.txt, data/]
      metrics: out/metrics.json
"""

_COUNT = "import os\nopen(os.environ['COUNTER'], 'a').write(os.environ['MLSPEC_STEP'] + '\\n')\n"
FAN_FILES = {
    "src/prepare.py": _COUNT + textwrap.dedent("""
        import pathlib
        pathlib.Path("data/part").mkdir(parents=True, exist_ok=True)
        pathlib.Path("data/rows.txt").write_text("1\\n2\\n3\\n")
        pathlib.Path("data/part/extra.txt").write_text("x\\n")
    """),
    "src/train.py": _COUNT + textwrap.dedent("""
        import json, pathlib
        p = json.loads(pathlib.Path("params.json").read_text())
        rows = pathlib.Path("data/rows.txt").read_text().split()
        pathlib.Path("model/model.txt").write_text(f"{p['n_estimators']} {len(rows)}\\n")
    """),
    "src/evaluate.py": _COUNT + textwrap.dedent("""
        import json, pathlib
        n, rows = pathlib.Path("model/model.txt").read_text().split()
        pathlib.Path("out").mkdir(exist_ok=True)
        pathlib.Path("out/metrics.json").write_text(json.dumps({"score": int(n) / 1000}))
    """),
}


def _executions(counter: Path) -> list[str]:
    return counter.read_text().split() if counter.exists() else []


def _restores(stderr: str) -> list[str]:
    return [line.split(":")[0].split()[-1] for line in stderr.splitlines()
            if "restored from the cache" in line]


@pytest.fixture
def fan(tmp_path: Path) -> tuple[Path, Path]:
    """The project, its lock committed as a team would have it; and the counter file."""
    counter = tmp_path / "counter"
    repo = make_repo(tmp_path / "origin", FAN_SPEC, FAN_FILES)
    (repo / ".gitignore").write_text(".mlspec/\nparams.json\nout/\ndata/\nmodel/\n")
    r = mlspec("run", "--no-gates", cwd=repo, env={"COUNTER": str(counter)})
    assert r.returncode == 0, r.stdout + r.stderr
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "lock", cwd=repo)
    counter.unlink()
    return repo, counter


def _clone(origin: Path, dest: Path) -> Path:
    git("clone", "-q", str(origin), str(dest), cwd=origin.parent)
    return dest


def test_ci_sweep_fan_out_trains_each_param_set_once(fan: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    """Matrix jobs each run one variant in their own clone and upload .mlspec/sweeps and
    .mlspec/cache; the select job, in a third clone with every artifact merged in, runs
    `--sweep` and executes nothing: the spec's own variant comes back from the cache."""
    origin, counter = fan
    artifacts = tmp_path / "artifacts"
    for value in (50, 100):
        job = _clone(origin, tmp_path / f"job{value}")
        r = mlspec("run", "train", "evaluate", "--no-gates", "--set", f"n_estimators={value}",
                   cwd=job, env={"COUNTER": str(counter)})
        assert r.returncode == 0, r.stdout + r.stderr
        for part in (layout.SWEEPS, layout.CACHE):
            shutil.copytree(job / part, artifacts / part, dirs_exist_ok=True)
    assert sorted(_executions(counter)) == sorted(["prepare", "train", "evaluate"] * 2)
    counter.unlink()

    select = _clone(origin, tmp_path / "select")
    shutil.copytree(artifacts / layout.STATE, select / layout.STATE, dirs_exist_ok=True)
    r = mlspec("run", "train", "evaluate", "--sweep", "--no-gates", "--json", cwd=select,
               env={"COUNTER": str(counter)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert _executions(counter) == []  # nothing executed
    assert sorted(_restores(r.stderr)) == ["evaluate", "prepare", "train"]
    data = json.loads(r.stdout)
    assert data["ran"] == [] and sorted(data["restored"]) == ["evaluate", "prepare", "train"]
    assert all(v["cached"] for v in data["sweeps"]["train"]["variants"])
    assert data["sweeps"]["train"]["best"] == {"n_estimators": 100}
    # the restored workspace is exactly what the committed lock describes
    assert (select / "model/model.txt").read_text() == "100 3\n"
    assert (select / "data/part/extra.txt").read_text() == "x\n"
    status = mlspec("status", "--json", cwd=select)
    assert json.loads(status.stdout)["stale"] == []
    # only the lock's new sweeps section changed; .mlspec/ (the cache with it) stays ignored
    assert git("status", "--porcelain", "--untracked-files=all", cwd=select) == "M mlspec.lock"
    locked = Lock.parse((origin / "mlspec.lock").read_text()).steps
    assert Lock.parse((select / "mlspec.lock").read_text()).steps == locked


def test_restore_instead_of_executing(fan: tuple[Path, Path]) -> None:
    repo, counter = fan
    env = {"COUNTER": str(counter)}
    lock = (repo / "mlspec.lock").read_bytes()
    model = (repo / "model/model.txt").read_bytes()
    shutil.rmtree(repo / "model")
    shutil.rmtree(repo / "data")
    st = mlspec("status", cwd=repo)
    assert "prepare: stale — in the local cache" in st.stdout
    assert json.loads(mlspec("status", "--json", cwd=repo).stdout)["steps"]["prepare"][
        "cached"] is True
    r = mlspec("run", "--no-gates", cwd=repo, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _executions(counter) == []
    assert _restores(r.stderr) == ["prepare", "train"]  # evaluate is up to date
    assert (repo / "model/model.txt").read_bytes() == model
    assert (repo / "mlspec.lock").read_bytes() == lock
    # a copy, never a link into the cache: rewriting the out in place leaves the cache intact
    out = repo / "model/model.txt"
    assert out.stat().st_nlink == 1
    with open(out, "r+b") as fh:
        fh.write(b"XXXX")
    out.unlink()
    mlspec("run", "--no-gates", cwd=repo, env=env)
    assert _executions(counter) == [] and out.read_bytes() == model
    assert not [p for p in (repo / "model").iterdir() if p.name != "model.txt"]  # no temps


def test_corrupt_object_executes_and_leaves_nothing_partial(fan: tuple[Path, Path]) -> None:
    repo, counter = fan
    objects = repo / layout.CACHE / "objects"
    for obj in objects.iterdir():
        obj.chmod(0o644)
        obj.write_text("tampered\n")
    shutil.rmtree(repo / "data")
    r = mlspec("run", "--no-gates", cwd=repo, env={"COUNTER": str(counter)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "could not restore" in r.stderr and "corrupt" in r.stderr
    assert _executions(counter) == ["prepare"]
    assert sorted(p.name for p in (repo / "data").iterdir()) == ["part", "rows.txt"]
    assert not [p for p in repo.iterdir() if p.name.startswith(".mlspec-restore-")]


def test_force_and_verify_never_restore(fan: tuple[Path, Path]) -> None:
    repo, counter = fan
    env = {"COUNTER": str(counter)}
    shutil.rmtree(repo / "model")
    r = mlspec("run", "train", "--force", "--no-gates", cwd=repo, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _executions(counter) == ["train"] and not _restores(r.stderr)
    counter.unlink()
    shutil.rmtree(repo / "model")
    r = mlspec("run", "--force", "--no-gates", cwd=repo, env=env)
    assert _executions(counter) == ["prepare", "train", "evaluate"]
    assert not _restores(r.stderr)
    counter.unlink()
    shutil.rmtree(repo / "model")
    r = mlspec("run", "--verify", "--no-gates", cwd=repo, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _executions(counter) == ["prepare", "train", "evaluate"]


def test_verify_named_steps_only(fan: tuple[Path, Path]) -> None:
    repo, counter = fan
    env = {"COUNTER": str(counter)}
    r = mlspec("run", "--verify", "evaluate", "--no-gates", cwd=repo, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _executions(counter) == ["evaluate"]  # its upstream is up to date: not rerun
    assert "verify: 1 step(s) rerun; outs and metrics match mlspec.lock" in r.stdout
    counter.unlink()
    (repo / "model/model.txt").write_text("7 3\n")  # the upstream's out no longer matches
    r = mlspec("run", "--verify", "evaluate", "--no-gates", cwd=repo, env=env)
    assert r.returncode == 2
    assert "upstream step 'train' is stale" in r.stderr and "run.verify-upstream" in r.stderr
    assert _executions(counter) == []


def test_size_cap_evicts_least_recently_used(fan: tuple[Path, Path]) -> None:
    repo, counter = fan
    env = {"COUNTER": str(counter), "MLSPEC_CACHE_MAX_BYTES": "4000"}
    for value in (1, 2, 3, 4, 5, 6):
        r = mlspec("run", "train", "--no-gates", "--set", f"n_estimators={value}", cwd=repo,
                   env=env)
        assert r.returncode == 0, r.stdout + r.stderr
    cache = repo / layout.CACHE
    size = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())
    assert size <= 4000
    runs = {Lock.parse((repo / "mlspec.lock").read_text()).steps["train"].key}
    assert {f"sha256:{p.stem}" for p in (cache / "runs").iterdir()} >= runs  # newest kept
    assert len(list((cache / "runs").iterdir())) < 8  # older ones went


def test_gc_lists_then_deletes_what_the_lock_does_not_name(fan: tuple[Path, Path]) -> None:
    repo, counter = fan
    env = {"COUNTER": str(counter)}
    mlspec("run", "train", "--no-gates", "--set", "n_estimators=7", cwd=repo, env=env)
    mlspec("run", "train", "--no-gates", cwd=repo, env=env)  # back to the spec's params
    runs = repo / layout.CACHE / "runs"
    before = sorted(runs.iterdir())
    dry = mlspec("gc", "--json", cwd=repo)
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["runs"] == 1 and plan["bytes"] > 0 and not plan["deleted"]
    assert sorted(runs.iterdir()) == before  # a dry run deletes nothing
    done = mlspec("gc", "-y", cwd=repo)
    assert done.returncode == 0 and "deleted 1 cached run(s)" in done.stdout
    assert len(list(runs.iterdir())) == len(before) - 1
    shutil.rmtree(repo / "model")  # what the lock names still restores
    r = mlspec("run", "--no-gates", cwd=repo, env=env)
    assert _restores(r.stderr) == ["train"] and counter.read_text() == "train\n"


def test_noop_run_touches_no_cache(fan: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
                                   ) -> None:
    from mlspec import api
    from mlspec.run.cache import Cache

    repo, _ = fan
    touched: list[str] = []
    monkeypatch.setattr(Cache, "lookup", lambda self, key: touched.append(key))
    monkeypatch.setattr(Cache, "store", lambda self, *a: touched.append("store"))
    out = api.run(repo / "mlspec.yaml", [], force=False, sets=[], verify=False, sweep=False,
                  base=None, gates=False)
    assert out.code == 0 and out.data["skipped"] == ["prepare", "train", "evaluate"]
    assert touched == []


def test_cache_dir_is_git_ignored_without_a_gitignore(tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    repo = make_repo(tmp_path / "r", FAN_SPEC, FAN_FILES, commit=False)
    (repo / ".gitignore").unlink()
    r = mlspec("run", "--no-gates", cwd=repo, env={"COUNTER": str(counter)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert any((repo / layout.CACHE / "objects").iterdir())
    assert git("check-ignore", f"{layout.CACHE}/objects", cwd=repo)
    untracked = git("status", "--porcelain", "--untracked-files=all", cwd=repo)
    assert ".mlspec" not in untracked


def test_timeout_stops_the_step_and_records_nothing(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from mlspec import api
    from mlspec.run import execute

    spec = """
        version: 1
        project: {name: slow}
        model:
          steps:
            train:
              command: python src/slow.py
              deps: [src/slow.py]
              outs: [out/model.txt]
              resources: {timeout_minutes: 2}
    """
    files = {"src/slow.py": """
        import os, pathlib, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        pathlib.Path("pids").write_text(f"{os.getpid()} {child.pid}")
        time.sleep(120)
    """}
    repo = make_repo(tmp_path / "r", spec, files)
    monkeypatch.setattr(execute, "TIMEOUT_SCALE", 1 / 60)  # a "minute" lasts a second
    t0 = time.monotonic()
    out = api.run(repo / "mlspec.yaml", [], force=False, sets=[], verify=False, sweep=False,
                  base=None, gates=False)
    took = time.monotonic() - t0
    assert out.code == 1, out
    assert took < 30
    [diag] = out.diagnostics
    assert diag.rule == "run.timeout"
    assert diag.message == "step 'train' ran longer than its timeout_minutes (2)"
    assert diag.file.endswith("mlspec.yaml") and diag.line == 9  # the timeout_minutes line
    assert "ran longer than its timeout_minutes" in out.text
    assert not (repo / "mlspec.lock").exists()
    for pid in map(int, (repo / "pids").read_text().split()):  # the step and its child
        assert _gone(pid), pid


def _gone(pid: int) -> bool:
    """Ended (a zombie waiting for a reaper that is not us counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True

"""Invariants of the target-neutral plan (mlspec.compile.model) for every golden spec: what one
renderer relies on, every renderer can rely on."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import EXAMPLES

HERE = Path(__file__).resolve().parent
SPECS = sorted(p for p in (HERE / "specs").iterdir() if (p / "mlspec.yaml").is_file())
SPECS.append(EXAMPLES / "iris")
KNOWN_VARS = {"ci.base_ref", "ci.ref_name", "ci.sha", "ci.pr_number", "ci.repository",
              "ci.token", "ci.variant", "ci.run_url", "ci.rollback_to", "ci.rollback_digest",
              "ci.actor", "ci.registry_user", "ci.registry_password"}


def _plan(spec_dir: Path):  # type: ignore[no-untyped-def]
    from mlspec.compile.planner import build_plan
    from mlspec.spec.loader import load_spec

    return build_plan(load_spec(spec_dir / "mlspec.yaml"))


@pytest.mark.parametrize("spec_dir", SPECS, ids=lambda p: p.name)
def test_plan_invariants(spec_dir: Path) -> None:
    from mlspec.compile.model import CiVar, JobOutputVar, MatrixVar, SecretVar

    plan = _plan(spec_dir)
    assert set(plan.flows) == {"experiment", "release", "schedule"}
    for flow in plan.flows.values():
        ids = [j.id for j in flow.jobs]
        assert len(ids) == len(set(ids)), flow.name
        seen: set[str] = set()
        uploaded_by: dict[str, str] = {}
        for job in flow.jobs:
            assert set(job.needs) <= seen, f"{job.id} needs a later or unknown job"
            ancestors: set[str] = set()
            todo = list(job.needs)
            while todo:
                n = todo.pop()
                if n not in ancestors:
                    ancestors.add(n)
                    todo.extend(flow.job(n).needs)
            for art in job.downloads:  # every download comes from a job it (transitively) needs
                assert uploaded_by.get(art.name) in ancestors, (flow.name, job.id, art.name)
            for art in job.uploads:
                assert art.name not in uploaded_by, f"{art.name} uploaded twice"
                uploaded_by[art.name] = job.id
            assert job.secrets == {} or job.environment is not None, job.id
            assert job.id_token == any(p.scope == "id-token" for p in job.permissions)
            assert all(p.why for p in job.permissions)
            envs = [job.env, *(c.env for c in (*job.commands, *job.after_attest))]
            for env in envs:
                for value in env.values():
                    if isinstance(value, CiVar):
                        assert "ci." + value.name in KNOWN_VARS
                    else:
                        assert isinstance(value, str | MatrixVar | SecretVar | JobOutputVar)
            for cmd in (*job.commands, *job.after_attest):
                assert "${{" not in cmd.run and "$[[" not in cmd.run
            seen.add(job.id)
    experiment = plan.flows["experiment"]
    assert experiment.jobs[0].id == "check"
    assert all(j.cache is None for f in ("release", "schedule") for j in plan.flows[f].jobs)


def test_sweep_plan_shape() -> None:
    plan = _plan(HERE / "specs" / "sweep")
    flow = plan.flows["experiment"]
    sweep = flow.job("sweep-fit")
    assert sweep.matrix is not None
    assert sweep.matrix.axes == (("alpha", (0.1, 1.0, 10.0)), ("solver", ("auto", "svd")))
    assert sweep.matrix.size() == 6
    assert sweep.steps == ("fit", "score")  # the swept step and everything downstream
    assert sweep.needs == ("check", "step-make-data")
    select = flow.job("select-fit")
    assert select.needs == ("check", "step-make-data", "sweep-fit")
    assert [c.run for c in select.commands] == ["mlspec run fit score --sweep --no-gates"]
    assert flow.job("report").needs == ("check", "step-make-data", "select-fit")


def test_remote_is_normalised_or_dropped() -> None:
    from mlspec.compile.planner import normalise_remote

    assert normalise_remote("git@github.com:acme/iris.git") == "https://github.com/acme/iris"
    assert normalise_remote("https://token@gitlab.com/g/sub/p.git") == "https://gitlab.com/g/sub/p"
    assert normalise_remote("/home/me/iris") is None


@pytest.mark.parametrize(("verify", "runs"), [
    ("none", ["mlspec run"]), ("all", ["mlspec run --verify"]),
    ("[train]", ["mlspec run --verify train --no-gates", "mlspec run"])])
def test_release_tag_pulls_the_pinned_runs_before_running(tmp_path: Path, verify: str,
                                                          runs: list[str]) -> None:
    """With a remote, the release verify job restores what a release tag pins, then runs as
    ci.verify.release asks; without one it pulls nothing."""
    import shutil

    shutil.copytree(HERE / "specs" / "no-inference", tmp_path / "p")
    path = tmp_path / "p" / "mlspec.yaml"
    plain = path.read_text()
    text = plain.replace("project:\n", "project:\n  remote: file:///srv/store\n", 1)
    text += f"  verify: {{release: {verify}}}\n"
    path.write_text(text)
    verify_job = next(j for j in _plan(tmp_path / "p").flows["release"].jobs if j.id == "verify")
    cmds = [c.run for c in verify_job.commands]
    pull = next(i for i, c in enumerate(cmds) if "mlspec pull --release" in c)
    assert cmds[pull + 1:pull + 1 + len(runs)] == runs
    assert verify_job.commands[pull].env["REF"].name == "ref_name"  # type: ignore[union-attr]
    path.write_text(plain + f"  verify: {{release: {verify}}}\n")
    verify_job = next(j for j in _plan(tmp_path / "p").flows["release"].jobs if j.id == "verify")
    assert not any("mlspec pull" in c.run for c in verify_job.commands)

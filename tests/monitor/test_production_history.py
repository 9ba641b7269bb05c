"""Production history (issue 15): each `mlspec monitor` run leaves a record in the remote store,
and `mlspec metrics --history` / `mlspec report` show the deployed release's production points
beside its offline value. Records are hostile input: bad ones are notes, never a traceback."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
from conftest import mlspec
from production_fixtures import TRAIN_095, check_shown, released, two_runs

from mlspec import prodrecord


def test_two_runs_in_a_file_remote_beside_the_offline_value(tmp_path: Path) -> None:
    repo = released(tmp_path)
    store = tmp_path / "store"
    store.mkdir()
    env = {"MLSPEC_REMOTE": f"file://{store}"}
    tags = two_runs(repo, env)
    assert sorted(p.name for p in (store / "manifests").glob("*.json")) == [
        f"{t}.json" for t in tags]  # by tag; manifests/sha256/ holds them by digest
    check_shown(repo, env)


def test_no_record_and_a_failed_upload_leave_the_exit_code_to_the_gates(tmp_path: Path
                                                                         ) -> None:
    repo = released(tmp_path)
    store = tmp_path / "store"
    store.mkdir()
    r = mlspec("monitor", "--no-record", cwd=repo,
               env={"MLSPEC_REMOTE": f"file://{store}", "LIVE_ACC": "0.85"})
    assert r.returncode == 0 and "recorded" not in r.stderr and not list(store.iterdir())
    r = mlspec("monitor", cwd=repo, env={"MLSPEC_REMOTE": f"file://{tmp_path}/gone",
                                         "LIVE_ACC": "0.85"})
    assert r.returncode == 0, r.stderr
    assert "warning: the monitor run is not recorded in file://" in r.stderr, r.stderr
    assert "no such directory" in r.stderr and "Traceback" not in r.stderr
    r = mlspec("monitor", cwd=repo, env={"MLSPEC_REMOTE": f"file://{tmp_path}/gone",
                                         "LIVE_ACC": "0.5"})
    assert r.returncode == 1 and "not recorded" in r.stderr


def test_no_remote_is_a_note_and_reads_nothing(tmp_path: Path) -> None:
    repo = released(tmp_path)
    env = {"MLSPEC_REMOTE": "", "LIVE_ACC": "0.85"}
    r = mlspec("monitor", cwd=repo, env=env)
    assert r.returncode == 0 and "record" not in r.stderr, r.stderr
    r = mlspec("metrics", "--history", cwd=repo, env=env)
    assert "note: production history needs a remote store (`project.remote`" in r.stdout
    assert "`mlspec-monitor` artifact" in r.stdout
    report = mlspec("report", cwd=repo, env=env).stdout
    assert "### Production\n\n> production history needs a remote store" in report, report


def test_an_unreachable_remote_is_a_note_of_the_report(tmp_path: Path) -> None:
    import socket

    repo = released(tmp_path)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for remote in (f"oci://127.0.0.1:{port}/acme/store", f"file://{tmp_path}/gone"):
        env = {"MLSPEC_REMOTE": remote}
        report = mlspec("report", cwd=repo, env=env)
        assert report.returncode == 0 and "Traceback" not in report.stderr, report.stderr
        assert "> the monitor records could not be read: " in report.stdout, report.stdout
        hist = mlspec("metrics", "--history", cwd=repo, env=env)
        assert hist.returncode == 0 and "note: the monitor records could not be read" in \
            hist.stdout


def _plant(store: Path, tag: str, config: bytes, media: str = prodrecord.MONITOR_RUN,
           size: int | None = None) -> None:
    """A record as an attacker with write access to the store would leave it."""
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    blob = store / "blobs" / "sha256" / digest[7:]
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(config)
    manifest = {"schemaVersion": 2, "artifactType": media, "layers": [],
                "config": {"mediaType": media, "digest": digest,
                           "size": len(config) if size is None else size}}
    (store / "manifests" / f"{tag}.json").write_text(json.dumps(manifest))


def test_hostile_records_are_notes(tmp_path: Path) -> None:
    repo = released(tmp_path)
    store = tmp_path / "store"
    store.mkdir()
    env = {"MLSPEC_REMOTE": f"file://{store}"}
    two_runs(repo, env)
    good = {"time": "2000-01-01T00:00:00Z", "release": "v1.0.0", "metrics": {"accuracy": 0.5}}
    nan = json.dumps({**good, "metrics": {"accuracy": float("nan")}}).encode()
    huge = json.dumps({**good, "pad": "x" * (prodrecord.MAX_RECORD + 10)}).encode()
    planted = {
        "monitor-20000101T000001Z-000000000001": ("huge", lambda t: _plant(store, t, huge)),
        "monitor-20000101T000002Z-000000000002": ("not JSON", lambda t: _plant(
            store, t, b"\xff\x00not json")),
        "monitor-20000101T000003Z-000000000003": ("NaN", lambda t: _plant(store, t, nan)),
        "monitor-20000101T000004Z-000000000004": ("wrong media type", lambda t: _plant(
            store, t, json.dumps(good).encode(), "application/vnd.evil+json")),
        "monitor-20000101T000005Z-000000000005": ("huge, size understated", lambda t: _plant(
            store, t, huge, size=100)),
    }
    for tag, (_, plant) in planted.items():
        plant(tag)
    (store / "manifests" / "monitor-not-a-record.json").write_text("{}")  # not our tag shape
    r = mlspec("metrics", "--history", cwd=repo, env=env)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    notes = [ln for ln in r.stdout.splitlines() if ln.startswith("note: monitor record")]
    assert notes == [
        "note: monitor record monitor-20000101T000001Z-000000000001 is left out: its record "
        "is larger than 64 KiB",
        "note: monitor record monitor-20000101T000002Z-000000000002 is left out: it is not "
        "UTF-8",
        "note: monitor record monitor-20000101T000003Z-000000000003 is left out: it holds NaN",
        "note: monitor record monitor-20000101T000004Z-000000000004 is left out: it is not a "
        "monitor record (media type 'application/vnd.evil+json')",
        "note: monitor record monitor-20000101T000005Z-000000000005 is left out: its record "
        "does not match its digest (tampered, truncated or too big)"], r.stdout
    assert "2 monitor run(s)" in r.stdout  # the good ones are still shown
    report = mlspec("report", cwd=repo, env=env)
    assert report.returncode == 0 and report.stdout.count("> monitor record monitor-") == 5
    check_shown(repo, env)


@pytest.mark.parametrize("body, why", [
    (b"[]", "it is not a JSON object"),
    (b'{"time": "yesterday", "metrics": {}}', "its time is not UTC"),
    (b'{"time": "2026-01-01T00:00:00Z", "metrics": {"a": 1e999}}', "is not finite"),
    (b'{"time": "2026-01-01T00:00:00Z", "metrics": {"a": Infinity}}', "it holds Infinity"),
    (b'{"time": "2026-01-01T00:00:00Z", "metrics": {"a": true}}', "is not a number"),
    (b'{"time": "2026-01-01T00:00:00Z", "metrics": {"a\\u001b[2J": 1}}', "control"),
    (b'{"time": "2026-01-01T00:00:00Z", "metrics": {}, "run_url": "javascript:x"}', "run_url"),
    (b'{"time": "2026-01-01T00:00:00Z", "metrics": {}, "commit": "HEAD"}', "commit"),
    (b'{"time": "2026-01-01T00:00:00Z", "metrics": {}, "gates": [{"gate": "x"}]}', "gates"),
    (b"[" * 60_000, "nests too deeply"),
])
def test_decode_refuses_what_is_not_a_record(body: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why.replace("[", r"\[")):
        prodrecord.decode(body)


def test_a_record_round_trips_and_its_tag_is_not_a_step_tag() -> None:
    rec = prodrecord.Record("2026-12-01T10:12:42Z", "v1.0.0", "a" * 40, {"psi_max": 0.12,
                            "n_live": 2000}, [{"gate": "psi_max <= 0.2", "verdict": "pass"}],
                            "https://github.com/acme/iris/actions/runs/7", "0.1.0")
    body = prodrecord.encode(rec)
    assert prodrecord.decode(body).to_data() == rec.to_data()
    assert prodrecord.encode(prodrecord.decode(body)) == body  # deterministic bytes
    tag = prodrecord.tag_of(rec, body)
    assert tag.startswith("monitor-20261201T101242Z-") and prodrecord.TAG.fullmatch(tag)
    assert not tag.startswith("sha256-")
    assert prodrecord.run_url({"GITHUB_SERVER_URL": "https://github.com",
                               "GITHUB_REPOSITORY": "acme/iris", "GITHUB_RUN_ID": "7"}) == \
        "https://github.com/acme/iris/actions/runs/7"
    assert prodrecord.run_url({"CI_JOB_URL": "https://gitlab.com/a/b/-/jobs/1 x"}) is None
    assert prodrecord.clean({"a": float("nan"), "b": 1, "c\n": 2.0, "d": 10 ** 400}) == (
        {"b": 1}, 3)


def test_the_job_summary_gets_the_monitor_table(tmp_path: Path) -> None:
    repo = released(tmp_path)
    summary = tmp_path / "summary.md"
    r = mlspec("monitor", cwd=repo, env={"MLSPEC_REMOTE": "", "LIVE_ACC": "0.7",
                                         "GITHUB_STEP_SUMMARY": str(summary)})
    assert r.returncode == 1
    text = summary.read_text()
    assert text.startswith("### mlspec monitor\n\n| metric | value |\n|---|---:|\n"
                           "| accuracy | 0.7000 |\n| n_live | 100 |\n"), text
    assert "| `accuracy >= baseline - 0.1` | 0.7000 | ❌ FAIL |" in text


def test_a_rollback_names_the_deployed_release(tmp_path: Path) -> None:
    from conftest import git

    repo = released(tmp_path)
    store = tmp_path / "store"
    store.mkdir()
    env = {"MLSPEC_REMOTE": f"file://{store}"}
    assert mlspec("monitor", cwd=repo, env={**env, "LIVE_ACC": "0.85"}).returncode == 0
    (repo / "train.py").write_text(TRAIN_095)
    assert mlspec("run", "--force", cwd=repo).returncode == 0
    git("commit", "-qam", "better", cwd=repo)
    git("tag", "-a", "v1.1.0", "-m", "release 1.1.0", cwd=repo)
    time.sleep(1.05)
    r = mlspec("monitor", "--json", cwd=repo, env={**env, "LIVE_ACC": "0.6"})
    assert r.returncode == 1, r.stderr
    r = mlspec("metrics", "--history", cwd=repo, env=env)
    assert "production: v1.1.0 (the newest release), 1 monitor run(s)" in r.stdout, r.stdout
    assert "accuracy  0.9500   0.6000               -0.3500" in r.stdout, r.stdout
    assert "note: 1 monitor record(s) of other releases (v1.0.0) are not shown" in r.stdout
    time.sleep(1.05)  # a rollback counts when it was recorded after the newest release
    git("tag", "-a", "rollback/v1.0.0/1", "-m", "mlspec rollback to v1.0.0",
        git("rev-parse", "v1.0.0^{commit}", cwd=repo), cwd=repo)
    r = mlspec("metrics", "--history", cwd=repo, env=env)
    assert "production: v1.0.0 (rolled back by rollback/v1.0.0/1), 1 monitor run(s)" in \
        r.stdout, r.stdout
    assert "accuracy  0.9000   0.8500               -0.0500" in r.stdout, r.stdout
    assert "(v1.1.0) are not shown" in r.stdout
    # the monitor's `baseline` follows the rollback too: v1.0.0's 0.90, not v1.1.0's 0.95
    r = mlspec("monitor", "--json", "--no-record", cwd=repo, env={**env, "LIVE_ACC": "0.82"})
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(r.stdout)
    assert data["baseline_ref"] == "v1.0.0" and data["gates"][0]["baseline"] == 0.9, data


def test_the_section_is_bounded_whatever_the_records_hold() -> None:
    from mlspec.gitops import production

    recs = [prodrecord.Record(f"2026-12-01T10:00:0{i}Z", "v1.0.0", None,
                              {f"m{j:03d}|<x>": float(j) for j in range(i * 200)}, [],
                              "https://ci.example/run/1?a=<b>|`c`")
            for i in range(2)]
    p = production.Production("file:///s", "v1.0.0", None, "the newest release",
                              {"m000|<x>": 1.0}, recs)
    md = production.markdown(p)
    assert "200 more metrics" not in md and "160 more metrics" in md, md[-400:]
    assert "| m000\\|&lt;x> | 1.0000 | 0.0000 | -1.0000 |" in md, md  # escaped in cells
    assert "(<https://ci.example/run/1?a=%3Cb%3E%7C%60c%60>)" in md
    text = production.text(p)
    assert text.count("\n") < 60
    empty = production.Production("file:///s", "v1.0.0", None, "the newest release", {},
                                  [recs[0]])
    assert "| metric | offline |" in production.markdown(empty)  # no metric: no chart


def test_gate_texts_are_cut_to_fit_a_record() -> None:
    long = "accuracy >= baseline - 0.05 " + "x" * 300
    gates = prodrecord.clean_gates([{"gate": long, "verdict": "fail"},
                                    {"gate": "a <= 1", "verdict": "FAIL"}])
    assert gates == [{"gate": long[:prodrecord.MAX_NAME].strip(), "verdict": "fail"}]
    rec = prodrecord.Record("2026-12-01T10:12:42Z", None, None, {}, gates)
    assert prodrecord.decode(prodrecord.encode(rec)).gates == gates


def test_reading_without_a_registry_never_imports_requests(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    repo = released(tmp_path)
    store = tmp_path / "store"
    store.mkdir()
    for remote in ("", f"file://{store}"):
        r = subprocess.run([sys.executable, "-X", "importtime", "-m", "mlspec", "metrics",
                            "--history"], cwd=repo, capture_output=True, text=True,
                           env={**os.environ, "MLSPEC_REMOTE": remote})
        assert r.returncode == 0 and "production" in r.stdout, r.stderr[-2000:]
        imported = {ln.rsplit("|", 1)[-1].strip() for ln in r.stderr.splitlines()
                    if ln.startswith("import time:")}
        assert "mlspec.gitops.production" in imported
        assert "requests" not in imported and "urllib3" not in imported, remote

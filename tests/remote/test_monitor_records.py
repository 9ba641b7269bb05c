"""Monitor records in a real registry (docker-registry, htpasswd auth): two `mlspec monitor`
runs recorded, then shown by `mlspec metrics --history` and `mlspec report` beside the
release's offline value; a manifest of another artifact type under a record's tag is a note;
step-run tags and record tags live side by side."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import mlspec
from production_fixtures import check_shown, released, two_runs
from remote_registry import PASSWORD, USER, Registry, running_registry

from mlspec.remote.transfer import MANIFEST_TYPE, STEP_RUN, open_store
from mlspec.remote.url import parse


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with running_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


def test_two_runs_in_a_registry_beside_the_offline_value(registry: Registry, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    env = {"MLSPEC_REMOTE": f"oci://{registry.host}/acme/prodhist",
           "MLSPEC_REGISTRY_USER": USER, "MLSPEC_REGISTRY_PASSWORD": PASSWORD}
    repo = released(tmp_path)
    tags = two_runs(repo, env)
    status, _, body = registry.request("GET", "/v2/acme/prodhist/tags/list")
    assert status == 200 and sorted(json.loads(body)["tags"]) == tags
    status, _, body = registry.request("GET", f"/v2/acme/prodhist/manifests/{tags[0]}",
                                             {"Accept": MANIFEST_TYPE})
    manifest = json.loads(body)
    assert manifest["artifactType"] == "application/vnd.mlspec.monitor-run.v1+json"
    check_shown(repo, env)

    # a step run's manifest (sha256-… tag) and an impostor under a record's tag
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    store = open_store(parse(env["MLSPEC_REMOTE"]), push=True)
    blob = tmp_path / "empty"
    blob.write_bytes(b"{}")
    digest = "sha256:" + hashlib.sha256(b"{}").hexdigest()
    store.put_blob(blob, digest, 2)
    for tag in ("sha256-" + "a" * 64, "monitor-20000101T000000Z-0123456789ab"):
        store.put_manifest(tag, json.dumps({
            "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": STEP_RUN, "digest": digest, "size": 2},
            "layers": []}).encode())
    r = mlspec("metrics", "--history", cwd=repo, env=env)
    assert r.returncode == 0 and "2 monitor run(s)" in r.stdout, r.stdout + r.stderr
    assert ("note: monitor record monitor-20000101T000000Z-0123456789ab is left out: it is "
            "not a monitor record (media type 'application/vnd.mlspec.step-run.v1+json')"
            ) in r.stdout, r.stdout


def test_wrong_credentials_are_a_warning_of_monitor_and_a_note_of_report(
        registry: Registry, tmp_path: Path) -> None:
    env = {"MLSPEC_REMOTE": f"oci://{registry.host}/acme/denied",
           "MLSPEC_REGISTRY_USER": USER, "MLSPEC_REGISTRY_PASSWORD": "wrong"}
    repo = released(tmp_path)
    r = mlspec("monitor", cwd=repo, env={**env, "LIVE_ACC": "0.85"})
    assert r.returncode == 0 and "warning: the monitor run is not recorded in oci://" in \
        r.stderr, r.stderr
    report = mlspec("report", cwd=repo, env=env)
    assert report.returncode == 0 and "> the monitor records could not be read" in \
        report.stdout, report.stdout

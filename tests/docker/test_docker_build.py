"""`mlspec build` against a real Docker engine, and the image it makes, run for real.

Nothing can be pulled here, so the suite builds one base image locally (debootstrap of a
minimal Debian bookworm with python3, venv and pip, `docker import`ed as BASE; kept on the
machine and reused) and a wheelhouse of mlspec and its dependencies on the host, which the
generated Dockerfile installs offline through docker/wheels/ + pip.conf (both shared with the
pipeline tests: tests/pipelines_fixtures.py). A tmp copy of
examples/iris points inference.image.base at BASE and pushes to the registry that
.ci/services.sh runs on 127.0.0.1:5000. Three builds: one full, one after a code change, and
one for a release tag, pushed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import copy_example, git, mlspec, need, tool
from pipelines_fixtures import BASE

REGISTRY = "127.0.0.1:5000"
IMAGE = f"{REGISTRY}/mlspec-test/iris"
KNOWN = [([5.1, 3.5, 1.4, 0.2], "setosa"), ([7.0, 3.2, 4.7, 1.4], "versicolor"),
         ([6.3, 3.3, 6.0, 2.5], "virginica")]

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="session")
def client(docker_client: Any) -> Any:
    """The suite's one Docker client (tests/pipelines_fixtures.py)."""
    return docker_client


def prepare_repo(dest: Path, wheels: Path, base: str) -> Path:
    repo = copy_example("iris", dest)
    spec = repo / "mlspec.yaml"
    text = spec.read_text()
    text = text.replace('base: "python:3.11-slim"', f'base: "{base}"')
    text = text.replace("name: ghcr.io/acme/iris", f"name: {IMAGE}")
    spec.write_text(text)
    shutil.copytree(wheels, repo / "docker" / "wheels")
    with (repo / ".gitignore").open("a") as fh:
        fh.write("/docker/wheels/\n")
    res = mlspec("compile", "--target", "docker", cwd=repo)
    assert res.returncode == 0, res.stderr
    # train and evaluate: mlspec.lock (committed) records params, metrics and the model's hash
    res = mlspec("run", cwd=repo)
    assert res.returncode == 0, res.stdout + res.stderr
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "point the image at the local base and registry", cwd=repo)
    return repo


def build(repo: Path, *args: str) -> tuple[dict[str, Any], str, float]:
    start = time.monotonic()
    res = mlspec("build", "serve", "--json", *args, cwd=repo, timeout=1500)
    elapsed = time.monotonic() - start
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    return json.loads(res.stdout), res.stderr, elapsed


@pytest.fixture(scope="module")
def built(base_image: str, wheelhouse: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    repo = prepare_repo(tmp_path_factory.mktemp("build") / "iris", wheelhouse, base_image)
    record, _, elapsed = build(repo)
    sys.stderr.write(f"first serve image build: {elapsed:.1f}s\n")
    yield repo, record


def test_labels_tags_and_record(built: tuple[Path, dict[str, Any]], client: Any) -> None:
    repo, record = built
    commit = git("rev-parse", "HEAD", cwd=repo)
    from mlspec.api import load

    spec_hash = "sha256:" + load(repo / "mlspec.yaml").spec_hash
    labels = client.api.inspect_image(record["id"])["Config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == commit
    assert labels["mlspec.spec-hash"] == spec_hash
    lock = (repo / "mlspec.lock").read_bytes()
    assert labels["mlspec.lock-hash"] == "sha256:" + hashlib.sha256(lock).hexdigest()
    assert labels["org.opencontainers.image.version"] == "unreleased"
    metrics = json.loads((repo / "metrics.json").read_text())
    assert labels["mlspec.metric.f1_macro"] == str(float(metrics["f1_macro"]))
    assert record["tags"] == [f"{IMAGE}:{commit}"]
    assert client.api.inspect_image(f"{IMAGE}:{commit}")["Id"] == record["id"]
    on_disk = json.loads((repo / ".mlspec" / "build.json").read_text())
    assert on_disk["version"] == 1 and on_disk["serve"]["id"] == record["id"]
    assert on_disk["serve"]["revision"] == commit


def test_container_serves_as_non_root(built: tuple[Path, dict[str, Any]], client: Any) -> None:
    _, record = built
    container = client.containers.run(record["id"], detach=True)
    try:
        container.reload()
        ip = container.attrs["NetworkSettings"]["IPAddress"]
        url = f"http://{ip}:8080"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=3) as resp:
                    assert json.loads(resp.read()) == {"status": "ok"}
                break
            except OSError:
                container.reload()
                assert container.status == "running", container.logs().decode()[-2000:]
                assert time.monotonic() < deadline, container.logs().decode()[-2000:]
                time.sleep(0.5)
        body = json.dumps({"instances": [row for row, _ in KNOWN]}).encode()
        req = urllib.request.Request(f"{url}/predict", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.loads(resp.read()) == {"predictions": [s for _, s in KNOWN]}
        with urllib.request.urlopen(f"{url}/metadata", timeout=10) as resp:
            lineage = json.loads(resp.read())["lineage"]  # from /app/mlspec.lock
        assert lineage["step"] == "train" and lineage["matches_lock"] is True
        assert lineage["params"]["n_estimators"] == 100 and "f1_macro" in lineage["metrics"]
        uid = container.exec_run(["python3", "-c", "import os; print(os.getuid())"])
        assert uid.exit_code == 0 and uid.output.decode().strip() == "10001"
        assert container.attrs["Config"]["User"] == "10001:10001"
        # the image's HEALTHCHECK command passes against the running server
        probe = container.attrs["Config"]["Healthcheck"]["Test"]
        assert probe[0] == "CMD"
        assert container.exec_run(probe[1:]).exit_code == 0
    finally:
        container.stop(timeout=10)
        container.reload()
        exit_code = container.attrs["State"]["ExitCode"]
        container.remove(force=True)
    assert exit_code == 0  # SIGTERM stops the server cleanly (PID 1 has no default handler)


def test_code_change_reuses_dependency_layer(built: tuple[Path, dict[str, Any]],
                                             client: Any) -> None:
    repo, first = built
    src = repo / "src" / "evaluate.py"
    src.write_text(src.read_text() + "\n# a code-only change\n")
    git("commit", "-q", "-am", "code-only change", cwd=repo)
    second, stream, elapsed = build(repo)
    sys.stderr.write(f"serve image rebuild after a code change: {elapsed:.1f}s\n")
    run_step = stream.split("RUN python3 -m venv", 1)[1].split("Step ", 1)[0]
    assert "Using cache" in run_step
    before = client.api.inspect_image(first["id"])["RootFS"]["Layers"]
    after = client.api.inspect_image(second["id"])["RootFS"]["Layers"]
    # base, WORKDIR, dependency COPY and RUN layers are shared; only the code layer differs
    assert len(before) == len(after) == 5
    assert before[:4] == after[:4] and before[4] != after[4]
    assert second["cache"]["cached"] >= 8


def test_push_and_pull_by_digest(built: tuple[Path, dict[str, Any]], client: Any) -> None:
    try:
        urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=3).close()
        up = True
    except OSError:
        up = False
    need(up, f"no registry on {REGISTRY} (.ci/services.sh starts one)")
    repo, _ = built
    git("tag", "-a", "v1.2.0", "-m", "release 1.2.0", cwd=repo)  # a release: tag <image>:1.2.0
    record, _, _ = build(repo, "--push", "--tag", "candidate")
    commit = git("rev-parse", "HEAD", cwd=repo)
    digest = record["digest"]
    assert digest.startswith("sha256:") and record["repo_digest"] == f"{IMAGE}@{digest}"
    assert record["tags"] == [f"{IMAGE}:{commit}", f"{IMAGE}:1.2.0", f"{IMAGE}:candidate"]
    assert [p["ref"] for p in record["pushed"]] == record["tags"]
    assert {p["digest"] for p in record["pushed"]} == {digest}
    config = client.api.inspect_image(record["id"])["Config"]
    assert config["Labels"]["org.opencontainers.image.version"] == "1.2.0"
    assert "MLSPEC_MODEL_VERSION=1.2.0" in config["Env"]  # what serve's /metrics reports
    manifest = urllib.request.Request(
        f"http://{REGISTRY}/v2/mlspec-test/iris/manifests/{digest}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(manifest, timeout=10) as resp:
        assert resp.status == 200
    for ref in record["tags"]:
        client.api.remove_image(ref)
    pulled = client.images.pull(f"{IMAGE}@{digest}")
    assert pulled.id == record["id"]
    saved = json.loads((repo / ".mlspec" / "build.json").read_text())["serve"]
    assert saved["digest"] == digest and saved["revision"] == commit


def test_train_image_shares_dependencies_and_trains(built: tuple[Path, dict[str, Any]],
                                                    client: Any) -> None:
    repo, serve = built
    start = time.monotonic()
    res = mlspec("build", "train", "--json", cwd=repo, timeout=1500)
    assert res.returncode == 0, res.stderr[-3000:]
    sys.stderr.write(f"train image build (dependencies cached): {time.monotonic() - start:.1f}s\n")
    train = json.loads(res.stdout)
    assert train["image"] == f"{IMAGE}-train"
    serve_layers = client.api.inspect_image(serve["id"])["RootFS"]["Layers"]
    train_layers = client.api.inspect_image(train["id"])["RootFS"]["Layers"]
    assert serve_layers[:4] == train_layers[:4]  # base, WORKDIR, dependency COPY and RUN
    saved = json.loads((repo / ".mlspec" / "build.json").read_text())
    assert saved["train"]["id"] == train["id"] and "serve" in saved
    # the image reproduces the pipeline as its non-root user: `mlspec run` in /app
    container = client.containers.run(train["id"], detach=True)
    try:
        status = container.wait(timeout=600)["StatusCode"]
        logs = container.logs().decode()
    finally:
        container.remove(force=True)
    assert status == 0, logs[-3000:]
    # data/ is not in the context (.dockerignore): prepare regenerates it in the container
    assert "✓ prepare" in logs and "f1_macro >= 0.9" in logs


def test_clear_errors(built: tuple[Path, dict[str, Any]], client: Any,
                      tmp_path: Path) -> None:
    repo, _ = built
    # no daemon
    res = mlspec("build", "serve", cwd=repo, env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"})
    assert res.returncode == 2 and "[build.daemon]" in res.stderr and "hint:" in res.stderr
    assert "Traceback" not in res.stderr
    # unknown image kind
    res = mlspec("build", "nonsense", cwd=repo)
    assert res.returncode == 2 and "unknown image" in res.stderr
    # a base image that exists nowhere: reported at the spec line, before any build
    other = tmp_path / "other"
    shutil.copytree(repo, other, ignore=shutil.ignore_patterns("wheels"))
    spec = other / "mlspec.yaml"
    spec.write_text(spec.read_text().replace(BASE, "mlspec-test/missing:0.0"))
    assert mlspec("compile", "--target", "docker", cwd=other).returncode == 0
    res = mlspec("build", "serve", cwd=other, timeout=300)
    assert res.returncode == 2, res.stderr
    assert "[build.base-image]" in res.stderr and "mlspec-test/missing:0.0" in res.stderr
    line = next(i for i, text in enumerate(spec.read_text().splitlines(), 1)
                if "mlspec-test/missing" in text)
    assert f"mlspec.yaml:{line}:" in res.stderr
    assert "Traceback" not in res.stderr
    # a Dockerfile out of date with the spec
    spec.write_text(spec.read_text().replace("mlspec-test/missing:0.0", BASE))
    res = mlspec("build", "serve", cwd=other)
    assert res.returncode == 1 and "out of date" in res.stderr
    # a dirty tree is not pushed
    (other / "src" / "train.py").write_text("# changed\n")
    assert mlspec("compile", "--target", "docker", cwd=other).returncode == 0
    res = mlspec("build", "serve", "--push", cwd=other)
    assert res.returncode == 1 and "uncommitted changes" in res.stderr


@pytest.fixture
def auth_registry(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """A registry of our own that demands a password (htpasswd, bcrypt), on a free port."""
    registry = tool("docker-registry")
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # deprecated, but Debian 12's Python 3.11 has it (libxcrypt's bcrypt)

        hashed = crypt.crypt("test-only-password", crypt.mksalt(crypt.METHOD_BLOWFISH))
    except (ImportError, AttributeError, OSError):
        hashed = None
    need(bool(hashed and hashed.startswith("$2")), "no bcrypt for the registry's htpasswd")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "htpasswd").write_text(f"mlspec:{hashed}\n")
    (tmp_path / "config.yml").write_text(
        "version: 0.1\nlog: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'data'}}}}}\n"
        f"http: {{addr: \"127.0.0.1:{port}\"}}\n"
        f"auth: {{htpasswd: {{realm: mlspec-test, path: {tmp_path / 'htpasswd'}}}}}\n")
    proc = subprocess.Popen([registry, "serve", str(tmp_path / "config.yml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2)
            except urllib.error.HTTPError as err:
                if err.code == 401:
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "registry did not start"
            time.sleep(0.2)
        yield f"127.0.0.1:{port}", "mlspec", "test-only-password"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_push_with_credentials_from_the_named_env_var(
        built: tuple[Path, dict[str, Any]], auth_registry: tuple[str, str, str],
        client: Any) -> None:
    """ci.secrets.registry_password names the variable (REGISTRY_TOKEN) holding the password;
    inference.image.username the user. Without the variable the registry refuses the push."""
    repo, _ = built
    address, user, password = auth_registry
    spec = repo / "mlspec.yaml"
    spec.write_text(spec.read_text().replace(f"name: {IMAGE}",
                                             f"name: {address}/acme/iris, username: {user}"))
    git("commit", "-q", "-am", "push to the authenticated registry", cwd=repo)
    env = {"REGISTRY_TOKEN": "", "GITHUB_ACTOR": "", "CI_REGISTRY_USER": ""}
    res = mlspec("build", "serve", "--push", cwd=repo, env=env, timeout=1500)
    assert res.returncode == 1, res.stderr[-2000:]
    assert "push of" in res.stderr and "hint: check the registry credentials" in res.stderr
    assert "Traceback" not in res.stderr
    res = mlspec("build", "serve", "--push", "--json", cwd=repo,
                 env={**env, "REGISTRY_TOKEN": password}, timeout=1500)
    assert res.returncode == 0, res.stderr[-3000:]
    record = json.loads(res.stdout)
    digest = record["digest"]
    manifest = urllib.request.Request(
        f"http://{address}/v2/acme/iris/manifests/{digest}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    import base64

    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    manifest.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(manifest, timeout=10) as resp:
        assert resp.status == 200
    assert password not in res.stdout + res.stderr

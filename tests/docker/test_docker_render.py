"""The `docker` compile target: golden bodies, determinism, the Dockerfile rules of
docs/DESIGN.md §5 checked on the parsed instructions, and hadolint on every generated Dockerfile."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import EXAMPLES, copy_example, mlspec, tool

from mlspec.api import load
from mlspec.compile.planner import build_plan
from mlspec.compile.targets.docker.dockerfiles import render

EXPECTED = Path(__file__).resolve().parent / "expected"
FILES = ("docker/train.Dockerfile", "docker/serve.Dockerfile", ".dockerignore")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")))
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def render_repo(repo: Path) -> dict[str, str]:
    return render(build_plan(load(repo / "mlspec.yaml")))


def edit_spec(repo: Path, old: str, new: str) -> None:
    spec = repo / "mlspec.yaml"
    text = spec.read_text()
    assert old in text
    spec.write_text(text.replace(old, new))


def check_rules(body: str, serve: bool) -> None:
    ins = instructions(body)
    kinds = [k for k, _ in ins]
    assert "ADD" not in kinds
    base = [a for k, a in ins if k == "FROM"]
    assert base and all(":" in b.split("/")[-1] and not b.endswith(":latest") for b in base)
    cmd = [a for k, a in ins if k == "CMD"]
    assert len(cmd) == 1 and isinstance(json.loads(cmd[0]), list)  # exec form
    user = [a for k, a in ins if k == "USER"][-1]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    runs = [a for k, a in ins if k == "RUN"]
    for run in runs:
        for install in re.findall(r"pip install[^&]*", run):
            assert "--no-cache-dir" in install
    # the dependency layer comes before the code layer
    deps = next(i for i, (k, a) in enumerate(ins) if k == "RUN" and "pip install" in a)
    code = next(i for i, (k, a) in enumerate(ins) if k == "COPY" and a.endswith(". ."))
    assert deps < code
    # every instruction after the code layer is the lineage ARG and LABEL (and, serving, the
    # model version /metrics reports, from the same build argument)
    assert kinds[code + 1:] == (["ARG", "LABEL", "ENV"] if serve else ["ARG", "LABEL"])
    if serve:
        assert ins[-1][1] == 'MLSPEC_MODEL_VERSION="${MLSPEC_VERSION}"'
    labels = ins[code + 2][1]
    for key in ("org.opencontainers.image.revision", "org.opencontainers.image.source",
                "org.opencontainers.image.version", "mlspec.spec-hash", "mlspec.lock-hash"):
        assert f"{key}=" in labels
    assert ("HEALTHCHECK" in kinds) == serve


def test_iris_golden(update_golden: bool) -> None:
    files = render_repo(EXAMPLES / "iris")
    assert sorted(files) == sorted(FILES)
    for rel, body in files.items():
        golden = EXPECTED / "iris" / rel
        if update_golden:
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(body)
        assert body == golden.read_text(), f"{rel} differs from its golden file"


def test_iris_rules_and_labels() -> None:
    files = render_repo(EXAMPLES / "iris")
    check_rules(files["docker/train.Dockerfile"], serve=False)
    check_rules(files["docker/serve.Dockerfile"], serve=True)
    serve = files["docker/serve.Dockerfile"]
    assert "mlspec.metric.f1_macro=" in serve and "mlspec.metric.accuracy=" in serve
    assert 'CMD ["mlspec", "serve", "model/model.pkl", "--port", "8080", "--host", "0.0.0.0"]' \
        in serve
    assert "http://127.0.0.1:8080/healthz" in serve
    assert "pip install --no-cache-dir 'mlspec-gitops[sklearn]==0.1.0'" in serve
    assert "--require-hashes" not in serve  # requirements.txt has no hashes
    assert "data/iris.csv" in files[".dockerignore"].splitlines()


def test_examples_are_up_to_date() -> None:
    """examples/iris carries its generated Dockerfiles, checked like any compiled file."""
    res = mlspec("compile", "--target", "docker", "--check", cwd=EXAMPLES / "iris")
    assert res.returncode == 0, res.stdout + res.stderr


def test_deterministic_across_paths(tmp_path: Path) -> None:
    a = copy_example("iris", tmp_path / "a", commit=False)
    b = copy_example("iris", tmp_path / "deeper" / "b", commit=False)
    assert render_repo(a) == render_repo(b) == render_repo(a)


VARIANTS = {
    "hashes": None,  # requirements with --hash lines
    "digest": ('base: "python:3.11-slim"',
               'base: "python:3.11-slim@sha256:' + "a" * 64 + '"'),
    "custom-serve": ("command: mlspec serve model/model.pkl --port 8080",
                     "command: gunicorn app:server --bind 0.0.0.0:8080"),
    "host-given": ("command: mlspec serve model/model.pkl --port 8080",
                   "command: mlspec serve model/model.pkl --port 8080 --host=::"),
    "ci-install": ("default_branch: main", "default_branch: main\n  install: pip install "
                   "'mlspec>=0.1,<0.2'"),
    "no-requirements": ("  requirements: requirements.txt\n", ""),
}


@pytest.fixture(params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, str]]:
    name = request.param
    repo = copy_example("iris", tmp_path / "iris", commit=False)
    change = VARIANTS[name]
    if name == "hashes":
        (repo / "requirements.txt").write_text(
            "scikit-learn==1.5.0 \\\n    --hash=sha256:" + "b" * 64 + "\n")
    elif change is not None:
        edit_spec(repo, *change)
    return name, render_repo(repo)


def test_variants(variant: tuple[str, dict[str, str]]) -> None:
    name, files = variant
    serve = files["docker/serve.Dockerfile"]
    check_rules(serve, serve=True)
    check_rules(files["docker/train.Dockerfile"], serve=False)
    if name == "hashes":
        assert "pip install --no-cache-dir --require-hashes -r /tmp/deps/requirements.txt" in serve
    if name == "digest":
        assert f"FROM python:3.11-slim@sha256:{'a' * 64}\n" in serve
    if name == "custom-serve":
        assert 'CMD ["gunicorn", "app:server", "--bind", "0.0.0.0:8080"]' in serve
        assert "mlspec-gitops==" not in serve  # the serving command does not need mlspec
        assert "mlspec-gitops==" in files["docker/train.Dockerfile"]  # `mlspec run` does
    if name == "host-given":
        assert '"--host=::"]' in serve and "0.0.0.0" not in serve.split("CMD [")[-1]
    if name == "ci-install":
        assert "pip install --no-cache-dir 'mlspec>=0.1,<0.2'" in serve
    if name == "no-requirements":
        assert 'COPY ["docker/serve.Dockerfile", "docker/wheel[s]", "/tmp/deps/"]' in serve
        assert " -r " not in serve


def test_no_inference_renders_train_only(tmp_path: Path) -> None:
    repo = copy_example("iris", tmp_path / "iris", commit=False)
    text = (repo / "mlspec.yaml").read_text()
    (repo / "mlspec.yaml").write_text(text.split("\ninference:")[0] + "\n")
    files = render_repo(repo)
    assert "docker/serve.Dockerfile" not in files
    assert files["docker/train.Dockerfile"].startswith("FROM python:3.11-slim\n")


def test_hadolint_every_generated_dockerfile(tmp_path: Path) -> None:
    hadolint = tool("hadolint")
    bodies: dict[str, str] = {}
    for name, change in VARIANTS.items():
        repo = copy_example("iris", tmp_path / name, commit=False)
        if name == "hashes":
            (repo / "requirements.txt").write_text("x==1 --hash=sha256:" + "c" * 64 + "\n")
        elif change is not None:
            edit_spec(repo, *change)
        res = mlspec("compile", "--target", "docker", cwd=repo)
        assert res.returncode == 0, res.stderr
        for rel in ("docker/train.Dockerfile", "docker/serve.Dockerfile"):
            bodies[f"{name}/{rel}"] = str(repo / rel)
    bodies["example/serve"] = str(EXAMPLES / "iris" / "docker" / "serve.Dockerfile")
    bodies["example/train"] = str(EXAMPLES / "iris" / "docker" / "train.Dockerfile")
    res = subprocess.run([hadolint, "--no-color", *bodies.values()], capture_output=True,
                         text=True)
    assert res.returncode == 0 and res.stdout == "", res.stdout + res.stderr


def test_compile_writes_header_and_guards_hand_edits(tmp_path: Path) -> None:
    repo = copy_example("iris", tmp_path / "iris", commit=False)
    shutil.rmtree(repo / "docker", ignore_errors=True)
    (repo / ".dockerignore").unlink(missing_ok=True)
    assert mlspec("compile", "--target", "docker", cwd=repo).returncode == 0
    text = (repo / "docker/serve.Dockerfile").read_text()
    assert text.startswith("# Generated by mlspec from mlspec.yaml.")
    assert mlspec("compile", "--target", "docker", "--check", cwd=repo).returncode == 0
    (repo / "docker/serve.Dockerfile").write_text(text.replace("USER 10001", "USER 0"))
    res = mlspec("compile", "--target", "docker", cwd=repo)
    assert res.returncode == 2 and "edited by hand" in res.stderr
    res = mlspec("compile", "--target", "docker", "--check", cwd=repo)
    assert res.returncode == 1 and "docker/serve.Dockerfile" in res.stderr

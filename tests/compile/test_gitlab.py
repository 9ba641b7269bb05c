"""The gitlab target: golden files, GitLab's schema, YAML 1.1 == 1.2, the pipeline's rules and
job properties, the header / --check / hand-edit guard, and the helper script's API calls.

Goldens live in expected/<name>/ beside the github target's; regenerate with
`pytest --update-golden`. The end-to-end runs are in test_gitlab_local.py.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import pytest
import yaml
from conftest import EXAMPLES, mlspec, tool
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from mlspec.compile.render import quote, quote_lines

HERE = Path(__file__).resolve().parent
SPECS = {p.name: p for p in sorted((HERE / "specs").iterdir()) if (p / "mlspec.yaml").is_file()}
SPECS["iris"] = EXAMPLES / "iris"
# GitHub only: its remote store is on ghcr.io with no secret named, which a GitLab pipeline
# could not reach (compile --target gitlab refuses it: spec.remote-credentials)
del SPECS["remote-ghcr"]
PIPELINE = ".gitlab-ci.yml"
GENERATED = (".github", PIPELINE, ".gitlab", "docker", ".dockerignore", "data", "model",
             "__pycache__", ".mlspec")
KEYWORDS = {  # GitLab keywords the renderer writes as plain mapping keys
    "workflow", "name", "rules", "if", "variables", "when", "stages", "stage", "image",
    "services", "tags", "needs", "parallel", "matrix", "cache", "key", "paths", "before_script",
    "script", "after_script", "artifacts", "expose_as", "reports", "dotenv", "metrics",
    "expire_in", "environment", "url", "deployment_tier", "resource_group", "id_tokens", "aud",
    "timeout", "interruptible", "value", "options", "description", "files"}
TOP = {"workflow", "variables", "stages", "default", "include"}


def compile_gitlab(src: Path, dest: Path) -> dict[str, str]:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(*GENERATED))
    res = mlspec("compile", "--target", "gitlab", cwd=dest)
    assert res.returncode == 0, res.stdout + res.stderr
    return {p.relative_to(dest).as_posix(): p.read_text()
            for p in [dest / PIPELINE, *sorted((dest / ".gitlab").rglob("*"))] if p.is_file()}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    base = tmp_path_factory.mktemp("gitlab-golden")
    return {name: compile_gitlab(src, base / name) for name, src in SPECS.items()}


def load11(text: str) -> Any:
    return yaml.safe_load(text)  # PyYAML implements YAML 1.1, as GitLab's parser does


def load12(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(io.StringIO(text))  # ruamel: YAML 1.2


def jobs_of(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in doc.items() if k not in TOP and not k.startswith(".")}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_golden(name: str, compiled: dict[str, dict[str, str]], update_golden: bool) -> None:
    got = compiled[name]
    expected = HERE / "expected" / name
    if update_golden:
        (expected / PIPELINE).unlink(missing_ok=True)
        shutil.rmtree(expected / ".gitlab", ignore_errors=True)
        for rel, text in got.items():
            (expected / rel).parent.mkdir(parents=True, exist_ok=True)
            (expected / rel).write_text(text)
    want = {p.relative_to(expected).as_posix(): p.read_text()
            for p in [expected / PIPELINE, *sorted((expected / ".gitlab").rglob("*"))]
            if p.is_file()}
    assert want, f"no golden files for {name}: run pytest --update-golden"
    assert sorted(got) == sorted(want)
    for rel in want:
        assert got[rel] == want[rel], f"{name}/{rel} differs from its golden file"


def test_gitlab_schema(compiled: dict[str, dict[str, str]], tmp_path: Path) -> None:
    exe = tool("check-jsonschema")
    files = []
    for name, out in sorted(compiled.items()):
        path = tmp_path / f"{name}.gitlab-ci.yml"
        path.write_text(out[PIPELINE])
        files.append(str(path))
    res = subprocess.run([exe, "--builtin-schema", "vendor.gitlab-ci", "--data-transform",
                          "gitlab-ci", *files], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ok -- validation done" in res.stdout


def test_job_scripts_pass_shellcheck(compiled: dict[str, dict[str, str]],
                                     tmp_path: Path) -> None:
    """Each job's before_script + script + after_script, as the bash the runner executes."""
    exe = tool("shellcheck")
    files = []
    for name, out in sorted(compiled.items()):
        for job_name, job in jobs_of(load11(out[PIPELINE])).items():
            body = [*job.get("before_script", []), *job["script"], *job.get("after_script", [])]
            path = tmp_path / f"{name}-{job_name.replace(':', '_')}.sh"
            path.write_text("#!/usr/bin/env bash\n" + "\n".join(body) + "\n")
            files.append(str(path))
    res = subprocess.run([exe, "-s", "bash", *files], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout


@pytest.mark.parametrize("name", sorted(SPECS))
def test_yaml_11_and_12_read_the_same(name: str, compiled: dict[str, dict[str, str]]) -> None:
    text = compiled[name][PIPELINE]
    assert load11(text) == load12(text)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_string_is_quoted(name: str, compiled: dict[str, dict[str, str]]) -> None:
    plain: list[str] = []

    def walk(node: yaml.Node, is_key: bool = False) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                walk(k, True)
                walk(v)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item)
        elif isinstance(node, yaml.ScalarNode) and node.style not in ("'", '"'):
            if node.tag == "tag:yaml.org,2002:str" and not (is_key and node.value in KEYWORDS):
                plain.append(f"line {node.start_mark.line + 1}: {node.value!r}")
            if node.tag not in ("tag:yaml.org,2002:str", "tag:yaml.org,2002:bool"):
                plain.append(f"line {node.start_mark.line + 1}: {node.tag} {node.value!r}")

    walk(yaml.compose(compiled[name][PIPELINE]))
    assert not plain, "unquoted scalars:\n" + "\n".join(plain)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_pipeline_properties(name: str, compiled: dict[str, dict[str, str]]) -> None:
    text = compiled[name][PIPELINE]
    assert "${{" not in text and "$[[" not in text
    doc = load11(text)
    rules = doc["workflow"]["rules"]
    assert rules[-1] == {"when": "never"}
    flows = {r["variables"]["MLSPEC_FLOW"] for r in rules[:-1]}
    assert "experiment" in flows and "release" in flows
    for r in rules[:-1]:
        if "CI_COMMIT_TAG" in r["if"]:
            assert '$CI_COMMIT_REF_PROTECTED == "true"' in r["if"]
    stages = doc["stages"]
    assert len(set(stages)) == len(stages)
    jobs = jobs_of(doc)
    assert jobs
    for job_name, job in jobs.items():
        for key in ("image", "timeout", "interruptible", "stage", "rules", "script"):
            assert key in job, f"{job_name} has no {key}"
        assert isinstance(job["interruptible"], bool)
        assert job["stage"] in stages
        for need in job.get("needs", []):
            assert need in jobs, f"{job_name} needs unknown job {need}"
            assert stages.index(jobs[need]["stage"]) <= stages.index(job["stage"])
        for rule in job["rules"]:
            assert "$MLSPEC_FLOW ==" in rule["if"]
            if "$CI_COMMIT_TAG" in rule["if"]:
                assert '$CI_COMMIT_REF_PROTECTED == "true"' in rule["if"]
        deploys = "environment" in job or job_name.endswith(":publish")
        assert job["interruptible"] is not deploys, job_name
        if "environment" in job:
            assert all('$CI_COMMIT_REF_PROTECTED == "true"' in r["if"] for r in job["rules"])
            assert job["environment"]["deployment_tier"] in (
                "production", "staging", "testing", "development", "other")
            if job["environment"]["name"] == "production":  # a release tag, or a rollback
                # to one (a pipeline `mlspec rollback` asked for: its digest is a release's)
                assert all("$CI_COMMIT_TAG" in r["if"] or '$MLSPEC_FLOW == "rollback"' in r["if"]
                           for r in job["rules"])
        else:
            assert "id_tokens" not in job, f"{job_name}: an ID token without a deployment"
        if any('"rollback"' in r["if"] for r in job["rules"]):  # a rollback runs these alone
            assert job_name.startswith("release:rollback-") and "environment" in job
            assert all(r["if"].startswith('$MLSPEC_FLOW == "rollback"') for r in job["rules"])
            assert "services" not in job  # nothing is built: no docker
        assert "resource_group" not in job or "environment" in job
        if ":sweep-" in job_name:
            assert job["parallel"]["matrix"]


def test_iris_pipeline_shape(compiled: dict[str, dict[str, str]]) -> None:
    jobs = jobs_of(load11(compiled["iris"][PIPELINE]))
    assert load11(compiled["iris"][PIPELINE])["stages"][:4] == [
        "check", "data:prepare", "model:train", "model:evaluate"]
    sweep = jobs["experiment:sweep-train"]
    assert sweep["parallel"]["matrix"] == [{"MLSPEC_SWEEP_N_ESTIMATORS": ["50", "100", "200"]}]
    pip = {"key": {"files": ["requirements.txt", PIPELINE]}, "paths": [".cache/pip/"]}
    assert sweep["cache"][0]["key"] == "$MLSPEC_CACHE_SWEEP_TRAIN-$CI_NODE_INDEX"
    assert {".mlspec/sweeps/", ".mlspec/cache/"} <= set(sweep["cache"][0]["paths"])
    assert sweep["artifacts"]["paths"] == [".mlspec/sweeps/", ".mlspec/cache/"]
    assert sweep["timeout"] == "65 minutes"  # one variant of train (30) + evaluate (30) + 5
    assert jobs["experiment:step-prepare"]["cache"][0]["key"] == "$MLSPEC_CACHE_STEP_PREPARE"
    assert jobs["experiment:select-train"]["cache"] == [{
        "key": "$MLSPEC_CACHE_SELECT_TRAIN", "paths": [
            "model/model.pkl", "metrics.json", ".mlspec/steps/train.lock",
            ".mlspec/steps/evaluate.lock"]}, pip]
    assert all(pip in v["cache"] for v in jobs.values() if "before_script" in v)
    assert load11(compiled["iris"][PIPELINE])["variables"]["PIP_CACHE_DIR"] == (
        "$CI_PROJECT_DIR/.cache/pip")
    assert jobs["experiment:check"]["artifacts"]["reports"]["dotenv"] == "mlspec-keys.env"
    report = jobs["experiment:report"]
    assert report["artifacts"]["when"] == "always"
    assert set(report["artifacts"]["reports"]) == {"dotenv", "metrics"}
    assert "report.md" in report["artifacts"]["paths"]
    note = jobs["experiment:comment"]
    assert note["rules"][0]["if"].endswith("&& $MLSPEC_GITLAB_TOKEN")
    assert "--token-variable MLSPEC_GITLAB_TOKEN" in note["script"][0]
    prod = jobs["release:deploy-production"]
    assert prod["environment"] == {"name": "production", "deployment_tier": "production"}
    assert prod["id_tokens"] == {"MLSPEC_ID_TOKEN": {"aud": "$CI_SERVER_URL"}}
    assert "REGISTRY_TOKEN" not in str(prod["variables"])  # reaches the job by its own name
    assert "Add the CI/CD variables REGISTRY_TOKEN (Settings > CI/CD > Variables), masked and " \
        "protected, scoped to the deploy environments." in compiled["iris"][PIPELINE]
    assert "#   - Protect the tags v* (Settings > Repository > Protected tags)" in (
        compiled["iris"][PIPELINE])
    assert [j for j, v in jobs.items() if "id_tokens" in v] == [
        "release:deploy-staging", "release:deploy-production"]
    # git comes with the full Python image: no job installs it
    assert {j: v["image"] for j, v in jobs.items() if v["image"] != "python:3.11-slim"} == {
        j: "python:3.11" for j, v in jobs.items() if v.get("variables", {}).get("GIT_DEPTH")
        or "git " in str(v.get("script"))}
    assert "apt-get" not in compiled["iris"][PIPELINE]
    assert jobs["schedule:monitor"]["rules"][0]["if"].endswith('$MLSPEC_SCHEDULE == "monitor"')


def test_image_from_the_spec_pinned_by_digest(iris_repo: Path) -> None:
    pinned = "python:3.11-slim@sha256:" + "ab" * 32
    spec = iris_repo / "mlspec.yaml"
    spec.write_text(spec.read_text().replace("\nci:\n", f'\nci:\n  image: "{pinned}"\n'))
    res = mlspec("compile", "--target", "gitlab", cwd=iris_repo)
    assert res.returncode == 0, res.stderr
    jobs = jobs_of(load11((iris_repo / PIPELINE).read_text()))
    assert {v["image"] for v in jobs.values()} == {pinned}
    # a user's image may lack git: the jobs that run git install it when missing
    assert all(("apt-get" in str(v.get("before_script"))) == (
        v.get("variables", {}).get("GIT_DEPTH") == "0" or "git " in str(v["script"]))
        for v in jobs.values())


def test_header_check_and_hand_edit_guard(iris_repo: Path, tmp_path: Path) -> None:
    for p in (iris_repo / PIPELINE, iris_repo / ".gitlab"):
        if p.is_dir():
            shutil.rmtree(p)
        p.unlink(missing_ok=True)
    assert mlspec("compile", "--target", "gitlab", cwd=iris_repo).returncode == 0
    text = (iris_repo / PIPELINE).read_text()
    assert text.startswith("# Generated by mlspec from mlspec.yaml. Do not edit")
    assert (iris_repo / ".gitlab/mlspec/ci.py").read_text().startswith("# Generated by mlspec")
    again = mlspec("compile", "--target", "gitlab", "--check", cwd=iris_repo)
    assert again.returncode == 0, again.stdout + again.stderr
    # the same spec elsewhere compiles to the same bytes (no paths, clocks or hosts)
    other = tmp_path / "elsewhere"
    assert compile_gitlab(iris_repo, other)[PIPELINE] == text
    # drift: the spec changed, the file did not
    model = iris_repo / "specs" / "model.yaml"
    model.write_text(model.read_text().replace("timeout_minutes: 30", "timeout_minutes: 31"))
    drift = mlspec("compile", "--target", "gitlab", "--check", cwd=iris_repo)
    assert drift.returncode == 1
    assert "+++ b/.gitlab-ci.yml" in drift.stdout and "'101 minutes'" in drift.stdout
    assert (iris_repo / PIPELINE).read_text() == text  # --check writes nothing
    # a hand edit is refused, then overwritten with --force
    (iris_repo / PIPELINE).write_text(text.replace("'10 minutes'", "'11 minutes'", 1))
    refused = mlspec("compile", "--target", "gitlab", cwd=iris_repo)
    assert refused.returncode == 2
    assert "edited by hand" in refused.stderr
    forced = mlspec("compile", "--target", "gitlab", "--force", cwd=iris_repo)
    assert forced.returncode == 0, forced.stderr
    assert "'101 minutes'" in (iris_repo / PIPELINE).read_text()


def test_iris_example_is_up_to_date() -> None:
    res = mlspec("compile", "--target", "gitlab", "--check", cwd=EXAMPLES / "iris")
    assert res.returncode == 0, res.stdout + res.stderr
    expected = HERE / "expected" / "iris"
    assert (EXAMPLES / "iris" / PIPELINE).read_text() == (expected / PIPELINE).read_text()


@settings(max_examples=400, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",))), min_size=1,
                max_size=4))
def test_quoted_scalars_read_the_same_in_yaml_11_and_12(parts: list[str]) -> None:
    text = "\n".join(parts)
    for doc in (f"k: {quote(text)}\n", f"k:\n  - {quote_lines(text, 4)}\n"):
        got11, got12 = load11(doc)["k"], load12(doc)["k"]
        if isinstance(got11, list):
            got11, got12 = got11[0], got12[0]
        assert got11 == text == got12, doc


@pytest.mark.parametrize("word", ["on", "off", "yes", "no", "y", "n", "null", "~", "010",
                                  "0x1f", "1_000", "1e3", "3.10", ".inf", "2026-01-01", "<<",
                                  "'", '"', "#", "- x", "a: b", "$CI_COMMIT_TAG =~ /^v.*$/"])
def test_yaml_11_traps_stay_strings(word: str) -> None:
    doc = f"{quote(word)}: {quote(word)}\n"
    assert load11(doc) == {word: word} == load12(doc)


# -- the helper script (.gitlab/mlspec/ci.py) ------------------------------------------------


class FakeGitLab(BaseHTTPRequestHandler):
    """A stand-in for GitLab's REST API (notes, releases): no GitLab server can run here."""

    notes: ClassVar[list[dict[str, Any]]] = []
    releases: ClassVar[list[dict[str, Any]]] = []
    seen: ClassVar[list[tuple[str, str, str | None, str | None]]] = []

    def _send(self, code: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _form(self) -> dict[str, str]:
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        return {k: v[0] for k, v in parse_qs(raw).items()}

    def _record(self) -> None:
        self.seen.append((self.command, urlparse(self.path).path,
                          self.headers.get("PRIVATE-TOKEN"), self.headers.get("JOB-TOKEN")))

    def do_GET(self) -> None:
        self._record()
        self._send(200, self.notes if "/notes" in self.path else [])

    def do_POST(self) -> None:
        self._record()
        form = self._form()
        if self.path.endswith("/releases"):
            self.releases.append(form)
            self._send(201, {"tag_name": form["tag_name"]})
            return
        note = {"id": 100 + len(self.notes), "body": form["body"]}
        self.notes.append(note)
        self._send(201, note)

    def do_PUT(self) -> None:
        self._record()
        form = self._form()
        note_id = int(self.path.rsplit("/", 1)[1])
        for n in self.notes:
            if n["id"] == note_id:
                n["body"] = form["body"]
        self._send(200, {"id": note_id})

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fake_gitlab() -> Iterator[str]:
    FakeGitLab.notes, FakeGitLab.releases, FakeGitLab.seen = [], [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGitLab)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v4"
    finally:
        server.shutdown()
        server.server_close()


def run_helper(helper: Path, cwd: Path, env: dict[str, str], *args: str
               ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(helper), *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=60)


def test_helper_note_is_sticky_and_uses_the_named_token(
        compiled: dict[str, dict[str, str]], tmp_path: Path, fake_gitlab: str) -> None:
    helper = tmp_path / "ci.py"
    helper.write_text(compiled["iris"][".gitlab/mlspec/ci.py"])
    (tmp_path / "report.md").write_text("## metrics\nf1 1.0\n")
    env = {"CI_API_V4_URL": fake_gitlab, "CI_PROJECT_ID": "42", "CI_MERGE_REQUEST_IID": "7",
           "NOTE_TOKEN": "s3cret"}
    first = run_helper(helper, tmp_path, env, "note", "--token-variable", "NOTE_TOKEN",
                       "report.md")
    assert first.returncode == 0, first.stderr
    (tmp_path / "report.md").write_text("## metrics\nf1 0.9\n")
    second = run_helper(helper, tmp_path, env, "note", "--token-variable", "NOTE_TOKEN",
                        "report.md")
    assert second.returncode == 0, second.stderr
    assert len(FakeGitLab.notes) == 1  # updated, not posted twice
    assert FakeGitLab.notes[0]["body"].startswith("<!-- mlspec:report -->\n## metrics\nf1 0.9")
    assert {s[2] for s in FakeGitLab.seen} == {"s3cret"}
    assert ("PUT", "/api/v4/projects/42/merge_requests/7/notes/100", "s3cret", None) in (
        FakeGitLab.seen)
    missing = run_helper(helper, tmp_path, {**env, "NOTE_TOKEN": ""}, "note",
                         "--token-variable", "NOTE_TOKEN", "report.md")
    assert missing.returncode != 0 and "NOTE_TOKEN is not set" in missing.stderr


def test_helper_release_and_reports(compiled: dict[str, dict[str, str]], tmp_path: Path,
                                    fake_gitlab: str) -> None:
    helper = tmp_path / "ci.py"
    helper.write_text(compiled["iris"][".gitlab/mlspec/ci.py"])
    (tmp_path / "card.md").write_text("# iris v1.0.0\n")
    env = {"CI_API_V4_URL": fake_gitlab, "CI_PROJECT_ID": "42", "CI_JOB_TOKEN": "job-tok"}
    res = run_helper(helper, tmp_path, env, "release", "v1.0.0", "card.md")
    assert res.returncode == 0, res.stderr
    assert FakeGitLab.releases == [{"tag_name": "v1.0.0", "name": "v1.0.0",
                                    "description": "# iris v1.0.0\n"}]
    assert FakeGitLab.seen == [("POST", "/api/v4/projects/42/releases", None, "job-tok")]
    diff = {"metrics": [{"name": "f1_macro", "value": 0.97, "delta": -0.01},
                        {"name": "accuracy", "value": 0.95, "delta": None},
                        {"name": "gone", "value": None, "delta": None}], "passed": False}
    (tmp_path / "diff.json").write_text(json.dumps(diff))
    res = run_helper(helper, tmp_path, {}, "reports", "diff.json", "metrics.txt", "m.env")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "metrics.txt").read_text() == (
        "f1_macro 0.97\nf1_macro_delta -0.01\naccuracy 0.95\n")
    assert (tmp_path / "m.env").read_text() == (
        "MLSPEC_METRIC_F1_MACRO=0.97\nMLSPEC_METRIC_ACCURACY=0.95\nMLSPEC_GATES=fail\n")


def test_more_needs_than_gitlab_allows_fall_back_to_stages(tmp_path: Path) -> None:
    lines = ["version: 1", 'project: {name: chain, python: "3.11"}', "data:", "  steps:"]
    for i in range(60):
        dep = f"[src/s.py, out/{i - 1}.csv]" if i else "[src/s.py]"
        lines.append(f"    s{i}: {{command: python src/s.py, deps: {dep}, outs: [out/{i}.csv]}}")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "s.py").write_text("print('x')\n")
    (tmp_path / "mlspec.yaml").write_text("\n".join([*lines, "ci: {targets: [gitlab]}"]) + "\n")
    res = mlspec("compile", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    doc = load11((tmp_path / PIPELINE).read_text())
    jobs = jobs_of(doc)
    assert len(jobs["experiment:step-s49"]["needs"]) == 50  # check + 49 upstream
    assert "needs" not in jobs["experiment:step-s50"]
    last = jobs["experiment:step-s59"]
    assert "needs" not in last and len(last["dependencies"]) == 60
    stages = doc["stages"]
    assert all(stages.index(jobs[d]["stage"]) < stages.index(last["stage"])
               for d in last["dependencies"])
    exe = tool("check-jsonschema")
    check = subprocess.run([exe, "--builtin-schema", "vendor.gitlab-ci", "--data-transform",
                            "gitlab-ci", str(tmp_path / PIPELINE)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout

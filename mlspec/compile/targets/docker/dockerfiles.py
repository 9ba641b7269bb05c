"""The `docker` compile target: plan -> docker/train.Dockerfile, docker/serve.Dockerfile and
.dockerignore (bodies only; mlspec.compile.driver adds the `#` header and guards hand edits).

Everything here is a pure function of the spec and the repository's requirements file, so the
output is byte-identical on any machine. What varies per build (commit, release version, lock
hash, metric values) enters the images as build arguments set by `mlspec build`.

How mlspec gets into the images: the serving command defaults to `mlspec serve`, and the
training image runs `mlspec run`, so the dependency layer pip-installs mlspec itself, pinned to
the version that compiled the file (or to the requirement in `ci.install` when that is a
`pip install …` line). Offline builds put wheels (and a pip.conf) in `docker/wheels/`, which
the dependency layer copies through a glob that matches nothing when the directory is absent.
"""

from __future__ import annotations

import re
from typing import Any

from mlspec.compile import render as layer
from mlspec.compile.model import ImageFacts, Plan

APP_UID = 10001


def _context(facts: ImageFacts, which: str) -> dict[str, Any]:
    req = facts.requirements
    if which == "serve":
        argv = list(facts.serve_argv or ())
        needs_mlspec = argv[:1] == ["mlspec"]
    else:
        argv = ["mlspec", "run"]
        needs_mlspec = True
    anchor = layer.docker_path(req or f"docker/{which}.Dockerfile")
    ctx: dict[str, Any] = {
        "which": which,
        "base": layer.docker_path(facts.base),
        "uid": APP_UID,
        "anchor": anchor,
        "copy_deps": layer.docker_json([anchor, "docker/wheel[s]", "/tmp/deps/"]),
        "requirements": req,
        "requirements_file": layer.shell_word("/tmp/deps/" + req.rsplit("/", 1)[-1])
        if req else "",
        "require_hashes": facts.require_hashes,
        "mlspec_install": facts.mlspec_install if needs_mlspec else "",
        "metrics": [{"name": m.name, "arg": m.arg} for m in facts.metrics],
        "title": layer.docker_path(facts.title),
        "cmd": layer.docker_json(argv),
    }
    if which == "serve":
        url = f"http://127.0.0.1:{facts.port}{facts.health}"
        probe = f"import urllib.request; urllib.request.urlopen({url!r}, timeout=4)"
        ctx["port"] = facts.port
        ctx["healthcheck"] = layer.docker_json(["python3", "-c", probe])
    return ctx


def render(plan: Plan) -> dict[str, str]:
    """Relative path -> file body (without the header)."""
    env = layer.environment()
    facts = plan.docker
    files = {"docker/train.Dockerfile":
             env.get_template("docker/train.Dockerfile.j2").render(_context(facts, "train"))}
    if facts.serve_argv is not None:
        files["docker/serve.Dockerfile"] = env.get_template(
            "docker/serve.Dockerfile.j2").render(_context(facts, "serve"))
    files[".dockerignore"] = env.get_template("docker/dockerignore.j2").render(
        data_outs=[layer.dockerignore_line(p) for p in facts.data_outs])
    return {path: _tidy(body) for path, body in files.items()}


def _tidy(body: str) -> str:
    """One trailing newline, no trailing spaces, at most one blank line in a row."""
    lines = [line.rstrip() for line in body.split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    return text + "\n"

"""spec + git facts -> Plan (mlspec.compile.model). No target words here: what a CI system
calls things, and how it runs them, is the business of mlspec.compile.targets.

Determinism: the plan depends only on the spec's content, mlspec's version and the normalised
remote (never on absolute paths, clocks or hostnames).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from mlspec import __version__, requirement, spec_extras
from mlspec.compile.flows import PlanContext, experiment_flow, release_flow
from mlspec.compile.imagefacts import image_facts
from mlspec.compile.model import Plan, StepFacts
from mlspec.compile.schedule import schedule_flow

if TYPE_CHECKING:
    from mlspec.spec.loader import LoadedSpec

def read_remote(root: Path) -> str | None:
    """origin's URL as https://host/owner/repo for github.com/gitlab.com remotes, else None.

    Read from .git/config without GitPython (compile stays light). Local-path remotes give None
    so that two clones at different paths compile to the same bytes.
    """
    git = root / ".git"
    if git.is_file():  # a worktree: "gitdir: …"
        text = git.read_text(errors="replace").strip()
        if not text.startswith("gitdir:"):
            return None
        gd = Path(text[7:].strip())
        gd = gd if gd.is_absolute() else (root / gd)
        common = gd / "commondir"
        git = (gd / common.read_text().strip()).resolve() if common.is_file() else gd
    cfg = git / "config"
    if not cfg.is_file():
        return None
    section = None
    for line in cfg.read_text(errors="replace").splitlines():
        s = line.strip()
        if s.startswith("["):
            section = s
        elif section == '[remote "origin"]' and s.replace(" ", "").startswith("url="):
            return normalise_remote(s.split("=", 1)[1].strip())
    return None


def normalise_remote(url: str) -> str | None:
    m = re.match(r"^(?:https://(?:[^@/]+@)?|ssh://git@|git@)(github\.com|gitlab\.com)[:/]"
                 r"([A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+)/?$", url)
    if m is None:
        return None
    path = m.group(2)[:-4] if m.group(2).endswith(".git") else m.group(2)
    return f"https://{m.group(1)}/{path}"


def load_pins() -> dict[str, tuple[str, str]]:
    """The SHA-pinned GitHub Actions shipped with mlspec (mlspec/compile/pins.json)."""
    raw = json.loads((Path(__file__).with_name("pins.json")).read_text())
    return {k: (v["version"], v["sha"]) for k, v in raw.items() if not k.startswith("_")}


def build_plan(loaded: LoadedSpec) -> Plan:
    """The plan of a validated spec. Pure: reads only the spec and .git/config."""
    spec = loaded.spec
    ci = spec.ci
    install = [ci.install or f"pip install {shlex.quote(requirement(spec_extras(spec)))}"]
    if spec.project.requirements:
        install.append(f"pip install -r {shlex.quote(spec.project.requirements)}")
    actions = load_pins()
    for name, pin in sorted(ci.actions.items()):
        actions[name] = (pin.version, pin.sha)
    tags = [f"{ci.tag_prefix}*"]
    if spec.inference is not None:
        for dep in spec.inference.deploy.values():
            if dep.when.startswith("tag:") and dep.when[4:] not in tags:
                tags.append(dep.when[4:])
    ctx = PlanContext(loaded=loaded, install=tuple(install), tags=tuple(tags))
    flows = {"experiment": experiment_flow(ctx), "release": release_flow(ctx),
             "schedule": schedule_flow(ctx)}
    inf = spec.inference
    return Plan(
        source=loaded.path.name, spec_hash=loaded.spec_hash,
        project=spec.project.name, python=spec.project.python, version=__version__,
        install=tuple(install), default_branch=ci.default_branch,
        remote=read_remote(loaded.root), tag_prefix=ci.tag_prefix,
        flows=flows,  # type: ignore[arg-type]
        actions=actions, has_inference=inf is not None,
        image=inf.image.name if inf is not None else None,
        order=tuple(loaded.graph.order), steps=step_facts(loaded),
        requirements=spec.project.requirements, ci_image=ci.image, secrets=dict(ci.secrets),
        docker=image_facts(loaded),
    )


def step_facts(loaded: LoadedSpec) -> dict[str, StepFacts]:
    g = loaded.graph
    out: dict[str, StepFacts] = {}
    for name in g.order:
        step = g.steps[name]
        producers = []
        for dep in step.deps:
            found = g.producer_of(dep)
            producers.append(str(found) if found is not None else None)
        out[name] = StepFacts(
            name=name, stage=g.stage[name], deps=tuple(step.deps), producers=tuple(producers),
            outs=tuple(step.all_outs()))
    return out

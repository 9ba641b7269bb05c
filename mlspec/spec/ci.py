"""The `ci` section: where and how the generated pipelines run."""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from mlspec.compile.registry import CI_TARGETS
from mlspec.remote.url import BadRemote, parse
from mlspec.spec.common import (
    Branch,
    EnvName,
    Ident,
    ImageRef,
    Name,
    ShellWords,
    Strict,
    TagPrefix,
    fail,
)

if TYPE_CHECKING:
    from mlspec.errors import Diagnostic
    from mlspec.spec.source import SpecSource


class ActionPin(Strict):
    version: str
    sha: str = Field(pattern=r"^[0-9a-f]{40}$")


_BRANCH = r"^(?![-./])[A-Za-z0-9_./-]+$"
Target = Literal["github", "gitlab"]


def _default_targets() -> list[Target]:
    return ["github"]


class Verify(Strict):
    """Which steps each flow re-executes to prove the lock reproduces."""

    experiment: Literal["none", "all"] | list[Name] = Field(
        "none", description="pull/merge requests: none (check the experiment's outs against "
        "the committed lock, execute nothing again), all, or the steps to re-execute")
    release: Literal["none", "all"] | list[Name] = Field(
        "all", description="default branch and release tags: all (every release reproduces), "
        "none, or the steps to re-execute")


# registries whose CI token can push without a named secret, by target
OWN_REGISTRY = {"github": "ghcr.io", "gitlab": "registry.gitlab.com"}


def registry_host(repo: str) -> str:
    """The registry an image repository is pushed to (docker's rule: a first path part with a
    dot or a port, or localhost, is a host; anything else is Docker Hub)."""
    first = repo.split("/", 1)[0]
    if "/" in repo and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


class CI(Strict):
    targets: list[Target] = Field(default_factory=_default_targets)
    default_branch: Branch = Field("main", json_schema_extra={"pattern": _BRANCH})
    install: ShellWords | None = Field(
        None, description="how jobs install mlspec; default: the version that compiled")
    secrets: dict[Ident, EnvName] = Field(
        default_factory=dict, description="logical name -> CI secret NAME (never a value)")
    tag_prefix: TagPrefix = Field("v", json_schema_extra={"pattern": r"^(?![-.])[A-Za-z0-9_.-]*$"},
                            description="release tags are <prefix><version>, e.g. v1.2.0")
    image: ImageRef | None = Field(
        None, description="GitLab job image; default python:<version>-slim")
    verify: Verify = Field(default_factory=Verify,
                           description="which steps the pipelines re-execute to verify")
    actions: dict[str, ActionPin] = Field(
        default_factory=dict, description="override the pinned GitHub Actions (owner/repo)")

    @field_validator("targets")
    @classmethod
    def _targets(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise fail("spec.duplicate", "a target is listed twice")
        unknown = [t for t in v if t not in CI_TARGETS]  # the compile target registry
        if unknown:
            raise fail("spec.ci-target", f"unknown CI target '{unknown[0]}'",
                       f"one of: {', '.join(CI_TARGETS)}")
        return v

    @field_validator("actions")
    @classmethod
    def _actions(cls, v: dict[str, ActionPin]) -> dict[str, ActionPin]:
        for name in v:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+", name):
                raise fail("spec.action", f"'{name}' is not an owner/repo action name")
        return v


def ci_diagnostics(loaded: SpecSource, ci: CI, image: str | None,
                   order: list[str] | None) -> list[Diagnostic]:
    """Checks of the ci section against the rest of the spec: ci.verify names steps, and
    every target that pushes the serving image has credentials for its registry. `order`: the
    spec's steps (None when the step graph could not be built)."""
    diags: list[Diagnostic] = []
    for flow in ("experiment", "release"):
        steps = getattr(ci.verify, flow)
        if order is None or not isinstance(steps, list):
            continue
        for i, name in enumerate(steps):
            if name not in order:
                close = difflib.get_close_matches(name, order, n=1)
                diags.append(loaded.diag(("ci", "verify", flow, i),
                                         f"ci.verify.{flow} names unknown step '{name}'",
                                         "spec.verify-step",
                                         f"did you mean '{close[0]}'?" if close else
                                         f"steps: {', '.join(order)}"))
    if image is None or "registry_password" in ci.secrets:
        return diags
    host = registry_host(image)
    for target in ci.targets:
        if OWN_REGISTRY[target] != host:
            diags.append(loaded.diag(
                ("inference", "image", "name"),
                f"the {target} pipeline pushes {image} to {host} but has no "
                "credentials for it", "spec.registry-credentials",
                "name the CI secret holding a registry token in ci.secrets: "
                "`registry_password: SECRET_NAME` (and `registry_username` if the user is not "
                f"the CI's); only {OWN_REGISTRY[target]} works with the {target} job token"))
    return diags


def remote_username_diagnostics(loaded: SpecSource, ci: CI) -> list[Diagnostic]:
    """`remote_username` needs `remote_password` (a load-time check of the spec alone)."""
    if "remote_username" in ci.secrets and "remote_password" not in ci.secrets:
        return [loaded.diag(("ci", "secrets", "remote_username"),
                            "a remote username needs ci.secrets.remote_password",
                            "spec.secret-missing",
                            "add `remote_password: <SECRET_NAME>` under ci.secrets")]
    return []


def remote_diagnostics(loaded: SpecSource, ci: CI, remote: str | None,
                       targets: list[str]) -> list[Diagnostic]:
    """Each of `targets` (the pipelines being validated or compiled) can reach the remote
    store (`project.remote`, an OCI registry): its own registry with the job token, or the
    secrets ci.secrets names. A file:// remote needs no credentials. Run by `mlspec validate`
    and `mlspec compile`, not at load: a spec whose CI lacks credentials still runs, pushes
    and pulls on a developer's machine."""
    if remote is None or "remote_password" in ci.secrets:
        return []
    try:
        parsed = parse(remote)
    except BadRemote:
        return []  # said where project.remote is checked
    if parsed.kind != "oci":
        return []
    return [loaded.diag(
        ("project", "remote"),
        f"the {target} pipeline pulls from and pushes to {remote} but has no "
        f"credentials for {parsed.host}", "spec.remote-credentials",
        "name the CI secret holding a registry token in ci.secrets: "
        "`remote_password: SECRET_NAME` (and `remote_username` if the user is not the "
        f"CI's); only {OWN_REGISTRY[target]} works with the {target} job token")
        for target in targets if target in OWN_REGISTRY and OWN_REGISTRY[target] != parsed.host]

"""The `ci` section: where and how the generated pipelines run."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from mlspec.compile.registry import CI_TARGETS
from mlspec.spec.common import (
    Branch,
    EnvName,
    Ident,
    ImageRef,
    ShellWords,
    Strict,
    TagPrefix,
    fail,
)


class ActionPin(Strict):
    version: str
    sha: str = Field(pattern=r"^[0-9a-f]{40}$")


_BRANCH = r"^(?![-./])[A-Za-z0-9_./-]+$"
Target = Literal["github", "gitlab"]


def _default_targets() -> list[Target]:
    return ["github"]


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
            if not re.match(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+$", name):
                raise fail("spec.action", f"'{name}' is not an owner/repo action name")
        return v

"""The `gitlab` target: .gitlab-ci.yml and its helper script."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlspec.compile.registry import TARGETS
from mlspec.compile.targets.gitlab import pipeline

if TYPE_CHECKING:
    from mlspec.compile.model import Plan


@dataclass(frozen=True)
class GitLab:
    name: str = "gitlab"
    globs: tuple[str, ...] = TARGETS["gitlab"][1]

    def render(self, plan: Plan) -> dict[str, str]:
        return pipeline.render(plan)


TARGET = GitLab()

"""The `github` target: .github/workflows/mlspec-{experiment,release,schedule}.yml."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlspec.compile.registry import TARGETS
from mlspec.compile.targets.github import workflow

if TYPE_CHECKING:
    from mlspec.compile.model import Plan


@dataclass(frozen=True)
class GitHub:
    name: str = "github"
    globs: tuple[str, ...] = TARGETS["github"][1]

    def render(self, plan: Plan) -> dict[str, str]:
        return workflow.render(plan)


TARGET = GitHub()

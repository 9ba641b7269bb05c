"""The `docker` target: docker/{train,serve}.Dockerfile and .dockerignore."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlspec.compile.registry import TARGETS
from mlspec.compile.targets.docker import dockerfiles

if TYPE_CHECKING:
    from mlspec.compile.model import Plan


@dataclass(frozen=True)
class Docker:
    name: str = "docker"
    globs: tuple[str, ...] = TARGETS["docker"][1]

    def render(self, plan: Plan) -> dict[str, str]:
        return dockerfiles.render(plan)


TARGET = Docker()

"""Compile targets: each a package exposing `TARGET`, registered in mlspec.compile.registry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mlspec.compile.model import Plan


class Target(Protocol):
    """One kind of generated files. `render` is pure: the same plan gives the same bytes."""

    @property
    def name(self) -> str: ...  # as in `ci.targets` and `mlspec compile --target`

    @property
    def globs(self) -> tuple[str, ...]: ...  # files it owns (stale ones are removed)

    def render(self, plan: Plan) -> dict[str, str]:
        """Repository-relative path -> file body (without the generated-file header)."""
        ...

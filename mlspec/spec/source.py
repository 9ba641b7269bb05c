"""Where a spec came from while it loads: its files and the position of every node.

Its own module so that the checks the loader runs (validate, textrules, semantics, graph) can
take it without importing the loader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlspec.errors import Diagnostic
from mlspec.spec.yamlsafe import Key, Loc


@dataclass
class SpecSource:
    """Where a spec came from: its files and the position of every node. Diagnostics are
    located through it while the spec is being loaded, and afterwards."""

    path: Path  # the root spec file (absolute)
    root: Path  # the repository root: the spec's directory
    display: str  # the spec path as the user named it
    locs: dict[Key, Loc] = field(default_factory=dict)
    key_locs: dict[Key, Loc] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)  # repo-relative path -> absolute path
    broken: set[str] = field(default_factory=set)  # stages whose file failed to load

    def loc(self, key: Key) -> Loc:
        """The position of a node, or of its nearest ancestor that has one."""
        return nearest(self.locs, key) or Loc(self.display, 0, 0)

    def key_loc(self, key: Key) -> Loc:
        return self.key_locs.get(key) or self.loc(key)

    def diag(self, key: Key, message: str, rule: str, hint: str | None = None,
             at_key: bool = False) -> Diagnostic:
        loc = self.key_loc(key) if at_key else self.loc(key)
        return Diagnostic(loc.file, loc.line, loc.col, message, rule, hint)


def nearest(locs: dict[Key, Loc], key: Key) -> Loc | None:
    k = tuple(key)
    while True:
        if k in locs:
            return locs[k]
        if not k:
            return None
        k = k[:-1]

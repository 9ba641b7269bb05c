"""Diagnostics: errors are data, collected, sorted and printed at once (actionlint style)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One finding. Ordering sorts by file, then line, then column.

    A finding has a place (file, line >= 1, col >= 1), only a file (line 0: the whole file),
    or no place at all (file "", line 0): those print without a pseudo-location.
    """

    file: str
    line: int
    col: int
    message: str
    rule: str
    hint: str | None = None

    @classmethod
    def nowhere(cls, message: str, rule: str, hint: str | None = None) -> Diagnostic:
        """An error that has no place (a git failure, a bad command-line argument)."""
        return cls("", 0, 0, message, rule, hint)

    @classmethod
    def in_file(cls, file: str, message: str, rule: str, hint: str | None = None) -> Diagnostic:
        """An error about a whole file (missing, unreadable, too large, empty)."""
        return cls(file, 0, 0, message, rule, hint)

    @property
    def where(self) -> str:
        """'file:line:col', 'file' or '' (no place)."""
        if not self.file:
            return ""
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{max(self.col, 1)}"

    def render(self) -> str:
        where = self.where
        text = f"{where}: " if where else ""
        text += f"{self.message} [{self.rule}]"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def github(self) -> str:
        """A GitHub Actions workflow command, so the error shows on the PR's diff."""
        msg = f"{self.message} [{self.rule}]"
        if self.hint:
            msg += f" (hint: {self.hint})"
        props = []
        if self.file:
            props.append(f"file={_gh_escape_prop(self.file)}")
            if self.line > 0:
                props.append(f"line={self.line},col={max(self.col, 1)}")
        props.append(f"title={_gh_escape_prop(self.rule)}")
        return f"::error {','.join(props)}::{_gh_escape_data(msg)}"


def _gh_escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_escape_prop(s: str) -> str:
    return _gh_escape_data(s).replace(":", "%3A").replace(",", "%2C")


class MlspecError(Exception):
    """Raised with one or more diagnostics; the CLI prints them and exits 2."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = sorted(set(diagnostics))
        super().__init__("\n".join(d.render() for d in self.diagnostics))


class CheckFailed(Exception):
    """A check (gate, --check, --verify) failed: exit 1 with a message, not a usage error."""


def say(text: str) -> None:
    """A line for the person watching (progress, waiting for a lock) on stderr: stdout holds
    the command's result, which --json output and pipes read."""
    import sys

    sys.stderr.write(text + "\n")


def format_diagnostics(diags: Iterable[Diagnostic], fmt: str = "text") -> str:
    items = sorted(set(diags))
    if fmt == "json":
        return json.dumps([asdict(d) for d in items], indent=2) + "\n"
    if fmt == "github":
        return "".join(d.github() + "\n" for d in items)
    return "".join(d.render() + "\n" for d in items)


@dataclass
class Outcome:
    """What an api function hands back to the CLI: exit code, diagnostics, output."""

    code: int = 0
    diagnostics: list[Diagnostic] = field(default_factory=list)
    text: str = ""
    data: Any = None
    stderr: str = ""

    @classmethod
    def from_error(cls, err: MlspecError) -> Outcome:
        return cls(code=2, diagnostics=list(err.diagnostics))

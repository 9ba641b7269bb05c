"""The `project` section: name, Python version, requirements file."""

from __future__ import annotations

from pydantic import Field, field_validator

from mlspec.spec.common import Name, RelPath, Strict, VersionStr, fail


class Project(Strict):
    name: Name
    python: VersionStr = Field("3.11", description="Python version for every job, quoted: \"3.11\"")
    requirements: RelPath | None = Field(
        None, description="requirements file; its hash is part of every step's key")

    @field_validator("python")
    @classmethod
    def _python(cls, v: str) -> str:
        parts = v.split(".")
        if len(parts) != 2 or not all(p.isdigit() for p in parts) or parts[0] != "3":
            raise fail("spec.python-version", f"python '{v}' is not a Python 3 minor version",
                       "write it like \"3.11\"")
        return v

"""The `project` section: name, Python version, requirements file."""

from __future__ import annotations

from pydantic import Field, field_validator

from mlspec.remote.url import EXAMPLES, BadRemote, parse
from mlspec.spec.common import Name, RelPath, Strict, VersionStr, fail


class Project(Strict):
    name: Name
    python: VersionStr = Field("3.11", description="Python version for every job, quoted: \"3.11\"")
    requirements: RelPath | None = Field(
        None, description="requirements file; its hash is part of every step's key")
    remote: str | None = Field(
        None, description="where `mlspec push`/`pull` keep step runs: oci://host/repository "
        "(an OCI registry; HTTPS, plain HTTP only for localhost) or file:///absolute/dir; "
        "MLSPEC_REMOTE overrides it")

    @field_validator("remote")
    @classmethod
    def _remote(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                parse(v)
            except BadRemote as exc:
                raise fail("spec.remote", str(exc), f"e.g. {EXAMPLES}") from None
        return v

    @field_validator("python")
    @classmethod
    def _python(cls, v: str) -> str:
        parts = v.split(".")
        if len(parts) != 2 or not all(p.isdigit() for p in parts) or parts[0] != "3":
            raise fail("spec.python-version", f"python '{v}' is not a Python 3 minor version",
                       "write it like \"3.11\"")
        return v

"""Where the remote store is: `project.remote` in the spec, or `MLSPEC_REMOTE` over it.

`oci://host[:port]/repository` names an OCI registry repository (HTTPS; plain HTTP only for
localhost, 127.0.0.1 and ::1, as docker does); `file:///absolute/dir` a shared directory. The
text is hostile input: anything else is refused with a message that says what a remote looks
like. No credentials in the URL: they come from the environment or `~/.docker/config.json`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

ENV = "MLSPEC_REMOTE"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[::1\])"
                   r"(?::([0-9]{1,5}))?")
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
TAG_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")  # an OCI tag name
EXAMPLES = "oci://ghcr.io/acme/iris-store or file:///shared/mlspec-store"


class BadRemote(ValueError):
    """The remote text is not a remote mlspec can use (the message says why)."""


@dataclass(frozen=True)
class Remote:
    kind: str  # "oci" or "file"
    host: str = ""  # oci: host[:port] as written
    repository: str = ""  # oci: the repository path
    path: str = ""  # file: the absolute directory

    @property
    def scheme(self) -> str:
        """http only for a registry on this machine, https everywhere else."""
        name = self.host.rsplit(":", 1)[0] if not self.host.startswith("[") else "::1"
        return "http" if name in LOCAL_HOSTS else "https"

    def __str__(self) -> str:
        return f"oci://{self.host}/{self.repository}" if self.kind == "oci" \
            else f"file://{self.path}"


def parse(text: str) -> Remote:
    """A remote from its text, or BadRemote."""
    if not text or text != text.strip() or any(ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        raise BadRemote(f"remote '{text}' is empty or holds blanks or control characters")
    if len(text) > 512:
        raise BadRemote("remote is longer than 512 characters")
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in ("oci", "file"):
        raise BadRemote(f"remote '{text}' is not oci://host/repository or file:///dir")
    if any(c in rest for c in "?#\\"):
        raise BadRemote(f"remote '{text}' holds a query, fragment or backslash")
    if scheme == "file":
        if not rest.startswith("/") or rest.startswith("//"):
            raise BadRemote(f"remote '{text}' must be file:/// and an absolute directory "
                            "(no host)")
        parts = rest.rstrip("/").split("/")[1:]
        if not parts or any(p in ("", ".", "..") for p in parts):
            raise BadRemote(f"remote '{text}': the directory must be absolute, without "
                            "'.', '..' or empty parts, and not '/'")
        return Remote("file", path=rest.rstrip("/"))
    host, slash, repo = rest.partition("/")
    if "@" in host:
        raise BadRemote(f"remote '{text}' holds credentials: give them in "
                        "MLSPEC_REGISTRY_USER/MLSPEC_REGISTRY_PASSWORD or `docker login`")
    m = _HOST.fullmatch(host)
    if m is None or (m.group(1) is not None and not 0 < int(m.group(1)) < 65536):
        raise BadRemote(f"remote '{text}': '{host}' is not a registry host[:port]")
    if not slash or not repo or len(repo) > 255 or not all(
            _COMPONENT.fullmatch(c) for c in repo.split("/")):
        raise BadRemote(f"remote '{text}': '{repo}' is not a repository name (lowercase "
                        "letters, digits and . _ - separated by /)")
    return Remote("oci", host=host, repository=repo)


def configured(spec_value: str | None) -> Remote | None:
    """The remote in effect: MLSPEC_REMOTE when set (empty: none), else the spec's."""
    env = os.environ.get(ENV)
    if env is not None:
        return parse(env) if env.strip() else None
    return parse(spec_value) if spec_value else None

"""Registry credentials and the two ways a registry asks for them.

Credentials, first found wins: `MLSPEC_REGISTRY_USER` + `MLSPEC_REGISTRY_PASSWORD`, then the
`auths` of the docker config (`$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`:
`{"auths": {"host": {"auth": base64("user:password")}}}`, as `docker login` writes it without a
credential helper). Credential helpers (`credsStore`, `credHelpers`) are not run.

A registry answers 401 with `WWW-Authenticate`: `Basic realm=…` (send the credentials on every
request) or `Bearer realm=…,service=…,scope=…` (trade them, or nothing for anonymous pulls, for
a token at the realm, then send `Authorization: Bearer <token>`).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from pathlib import Path

USER_ENV = "MLSPEC_REGISTRY_USER"
PASSWORD_ENV = "MLSPEC_REGISTRY_PASSWORD"
_PARAM = re.compile(r'([A-Za-z]+)="([^"]*)"')


def credentials(host: str) -> tuple[str, str] | None:
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    if user and password is not None:
        return user, password
    return _docker_config(host)


def _docker_config(host: str) -> tuple[str, str] | None:
    base = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    try:
        data = json.loads((Path(base) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    auths = data.get("auths") if isinstance(data, dict) else None
    if not isinstance(auths, dict):
        return None
    for name in (host, f"https://{host}", f"http://{host}", f"https://{host}/v2/",
                 f"https://{host}/v1/"):
        entry = auths.get(name)
        raw = entry.get("auth") if isinstance(entry, dict) else None
        if isinstance(raw, str) and raw:
            try:
                user, sep, password = base64.b64decode(raw, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            return (user, password) if sep else None
    return None


def challenge(header: str) -> tuple[str, dict[str, str]]:
    """('basic'|'bearer'|other, params) of a WWW-Authenticate header."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), {k.lower(): v for k, v in _PARAM.findall(rest)}


def basic(creds: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()

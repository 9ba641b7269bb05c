"""Registry credentials and the two ways a registry asks for them.

Credentials, first found wins: `MLSPEC_REGISTRY_USER` + `MLSPEC_REGISTRY_PASSWORD`, then the
docker config (`$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`) as the docker CLI
reads it: the host's credential helper (`credHelpers: {host: NAME}`), else the default one
(`credsStore: NAME`), each run as `docker-credential-NAME get` with the server on stdin and
`{"Username", "Secret"}` on stdout (the credential-helper protocol); then the `auths` entry
`{"auths": {"host": {"auth": base64("user:password")}}}` that `docker login` writes without a
helper. An identity token (Username `<token>`) is not supported: said, not sent.

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
import shutil
import subprocess
from pathlib import Path

from mlspec.remote.errors import RemoteError

USER_ENV = "MLSPEC_REGISTRY_USER"
PASSWORD_ENV = "MLSPEC_REGISTRY_PASSWORD"
_PARAM = re.compile(r'([A-Za-z]+)="([^"]*)"')


def credentials(host: str) -> tuple[str, str] | None:
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    if user and password is not None:
        return user, password
    return _docker_config(host)


HELPER_TIMEOUT = 30
_HELPER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _docker_config(host: str) -> tuple[str, str] | None:
    base = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    try:
        data = json.loads((Path(base) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    helpers = data.get("credHelpers")
    helper = helpers.get(host) if isinstance(helpers, dict) else None
    if not isinstance(helper, str) or not helper:
        helper = data.get("credsStore")
    if isinstance(helper, str) and helper:
        found = _helper(helper, host)
        if found is not None:
            return found
    auths = data.get("auths")
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


def _helper(name: str, host: str) -> tuple[str, str] | None:
    """`docker-credential-NAME get` for `host`: its credentials, None when it has none for it
    (it answers "credentials not found" and exits 1). A helper that is missing, hangs, or
    answers something else is a RemoteError: the user configured it, so it is not skipped."""
    helper = f"the docker config's credential helper docker-credential-{name}"

    def bad(what: str, hint: str | None = None) -> RemoteError:
        return RemoteError("remote.auth", f"{helper} {what}", hint)

    if not _HELPER_NAME.fullmatch(name):
        raise RemoteError("remote.auth", f"the docker config names the credential helper "
                          f"{name!r}, which is not a helper name",
                          "credsStore / credHelpers name docker-credential-<name> on PATH")
    exe = shutil.which(f"docker-credential-{name}")
    if exe is None:
        raise bad("is not on PATH", f"install it, or remove '{name}' from the docker config")
    try:
        proc = subprocess.run([exe, "get"], input=host.encode(), capture_output=True,
                              timeout=HELPER_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise bad(f"gave no answer in {HELPER_TIMEOUT} s") from None
    except OSError as exc:
        raise bad(f"could not be started: {exc.strerror}") from None
    if proc.returncode != 0:
        said = proc.stdout.decode(errors="replace").strip()
        if "credentials not found" in said.lower():
            return None
        said = said or proc.stderr.decode(errors="replace").strip()
        raise bad(f"exited {proc.returncode}: {said[:200]}")
    try:
        answer = json.loads(proc.stdout)
        user, secret = answer["Username"], answer["Secret"]
    except (ValueError, KeyError, TypeError):
        raise bad('did not answer {"Username": …, "Secret": …}') from None
    if not isinstance(user, str) or not isinstance(secret, str):
        raise bad("answered a Username or Secret that is not a string")
    if user == "<token>":
        raise bad(f"holds an identity token for {host}, which mlspec cannot use",
                  "set MLSPEC_REGISTRY_USER and MLSPEC_REGISTRY_PASSWORD instead")
    return user, secret


def challenge(header: str) -> tuple[str, dict[str, str]]:
    """('basic'|'bearer'|other, params) of a WWW-Authenticate header."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), {k.lower(): v for k, v in _PARAM.findall(rest)}


def basic(creds: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()

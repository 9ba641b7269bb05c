"""A real registry for the remote tests: Debian's `docker-registry` (distribution 2.8) on a
free 127.0.0.1 port, htpasswd (bcrypt) auth, deletes enabled, storage in a temporary
directory the tests can reach into (to corrupt a blob). `token_registry` is the same registry
behind token auth (the Bearer flow of ghcr.io, GitLab and Docker Hub): a token service in the
test process signs RS256 JWTs with a throw-away openssl key the registry trusts."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import subprocess
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from conftest import git, init_repo, need, tool

USER, PASSWORD = "mlspec", "s3cret-pw"


def bcrypt_line(user: str, password: str) -> str | None:
    """An htpasswd line (bcrypt) from the stdlib crypt module or the bcrypt package."""
    try:
        import bcrypt

        return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()}"
    except ImportError:
        pass
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))
        return f"{user}:{hashed}" if hashed and hashed.startswith("$2") else None
    except (ImportError, AttributeError):
        return None


def make_repo(path: Path, spec: str, files: dict[str, str]) -> Path:
    """A committed git repository holding mlspec.yaml and the given files."""
    init_repo(path)
    (path / "mlspec.yaml").write_text(textwrap.dedent(spec).lstrip())
    for rel, text in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(textwrap.dedent(text).lstrip())
    (path / ".gitignore").write_text(".mlspec/\nparams.json\nout/\n")
    git("add", "-A", cwd=path)
    git("commit", "-q", "-m", "init", cwd=path)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    port: int
    storage: Path

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def request(self, method: str, path: str, headers: dict[str, str] | None = None
                ) -> tuple[int, dict[str, str], bytes]:
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        req = urllib.request.Request(f"http://{self.host}{path}", method=method, headers={
            "Authorization": f"Basic {token}", **(headers or {})})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=10) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def tags(self, repo: str) -> list[str]:
        """The repository's tags, sorted ([] before anything was pushed to it)."""
        status, _, body = self.request("GET", f"/v2/{repo}/tags/list")
        if status == 404:
            return []
        assert status == 200, body
        tags: list[str] = sorted(json.loads(body)["tags"] or [])
        return tags

    def blob_file(self, digest: str) -> Path:
        hexd = digest.split(":", 1)[1]
        return (self.storage / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexd[:2]
                / hexd / "data")


@contextlib.contextmanager
def _serve(exe: str, tmp: Path, storage_extra: str, auth: str, ready: int
           ) -> Iterator[Registry]:
    """docker-registry on a free port, storage under tmp, with `auth` (the config's auth
    section) and `storage_extra` (lines of its storage section); yields once GET /v2/ answers
    `ready`, stops it after."""
    storage = tmp / "storage"
    storage.mkdir()
    port = free_port()
    (tmp / "config.yml").write_text(f"""\
version: 0.1
log: {{level: warn}}
storage:
  filesystem: {{rootdirectory: {storage}}}
{storage_extra}{auth}http: {{addr: "127.0.0.1:{port}"}}
""")
    log = open(tmp / "registry.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([exe, "serve", str(tmp / "config.yml")], stdout=log,
                            stderr=subprocess.STDOUT)
    reg = Registry(port, storage)
    try:
        for _ in range(100):
            try:
                if reg.request("GET", "/v2/")[0] == ready:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("docker-registry did not start: "
                               + (tmp / "registry.log").read_text(errors="replace"))
        yield reg
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@contextlib.contextmanager
def running_registry(tmp: Path, delete: bool = True) -> Iterator[Registry]:
    """htpasswd auth; deletes enabled unless `delete` is False. `tmp / "config.yml"` is its
    configuration (for `docker-registry garbage-collect`)."""
    exe = tool("docker-registry")
    line = bcrypt_line(USER, PASSWORD)
    need(line is not None, "no bcrypt (python bcrypt or crypt with blowfish) for htpasswd")
    (tmp / "htpasswd").write_text(f"{line}\n")
    with _serve(exe, tmp, f"  delete: {{enabled: {'true' if delete else 'false'}}}\n",
                f"auth:\n  htpasswd: {{realm: mlspec-test, path: {tmp / 'htpasswd'}}}\n",
                ready=200) as reg:
        yield reg


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@contextlib.contextmanager
def token_registry(tmp: Path, delete: bool = False) -> Iterator[Registry]:
    """docker-registry with token auth: a token service in this process (the realm) checks
    USER/PASSWORD and signs an RS256 JWT whose x5c certificate the registry trusts (granting
    the actions the scope asks for); deletes enabled when `delete`."""
    import http.server
    import json
    import threading

    exe = tool("docker-registry")
    openssl = tool("openssl")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=mlspec-test-token", "-keyout", str(tmp / "token.key"),
                    "-out", str(tmp / "token.pem")], check=True, capture_output=True)
    der = subprocess.run([openssl, "x509", "-in", str(tmp / "token.pem"), "-outform", "DER"],
                         check=True, capture_output=True).stdout
    x5c = base64.b64encode(der).decode()

    def sign(data: bytes) -> bytes:
        return subprocess.run([openssl, "dgst", "-sha256", "-sign", str(tmp / "token.key")],
                              input=data, check=True, capture_output=True).stdout

    want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    class Tokens(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            from urllib.parse import parse_qs, urlsplit

            if self.headers.get("Authorization") != want:
                self.send_response(401)
                self.end_headers()
                return
            q = parse_qs(urlsplit(self.path).query)
            access = []
            for scope in q.get("scope", []):
                kind, repo, actions = scope.split(":")
                access.append({"type": kind, "name": repo, "actions": actions.split(",")})
            t = int(time.time())
            header = {"typ": "JWT", "alg": "RS256", "x5c": [x5c]}
            claims = {"iss": "mlspec-test-issuer", "sub": USER, "aud": "mlspec-test",
                      "exp": t + 300, "nbf": t - 10, "iat": t, "jti": str(t),
                      "access": access}
            signing = _b64(json.dumps(header).encode()) + "." + \
                _b64(json.dumps(claims).encode())
            sig = sign(signing.encode())
            body = json.dumps({"token": signing + "." + _b64(sig)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Tokens)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    auth = f"""\
auth:
  token:
    realm: http://127.0.0.1:{server.server_address[1]}/token
    service: mlspec-test
    issuer: mlspec-test-issuer
    rootcertbundle: {tmp / 'token.pem'}
"""
    try:
        with _serve(exe, tmp, "  delete: {enabled: true}\n" if delete else "", auth,
                    ready=401) as reg:
            yield reg
    finally:
        server.shutdown()

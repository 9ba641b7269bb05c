"""A real registry for the remote tests: Debian's `docker-registry` (distribution 2.8) on a
free 127.0.0.1 port, htpasswd (bcrypt) auth, deletes enabled, storage in a temporary
directory the tests can reach into (to corrupt a blob)."""

from __future__ import annotations

import base64
import contextlib
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

    def blob_file(self, digest: str) -> Path:
        hexd = digest.split(":", 1)[1]
        return (self.storage / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexd[:2]
                / hexd / "data")


@contextlib.contextmanager
def running_registry(tmp: Path) -> Iterator[Registry]:
    exe = tool("docker-registry")
    line = bcrypt_line(USER, PASSWORD)
    need(line is not None, "no bcrypt (python bcrypt or crypt with blowfish) for htpasswd")
    (tmp / "htpasswd").write_text(f"{line}\n")
    storage = tmp / "storage"
    storage.mkdir()
    port = free_port()
    (tmp / "config.yml").write_text(f"""\
version: 0.1
log: {{level: warn}}
storage:
  filesystem: {{rootdirectory: {storage}}}
  delete: {{enabled: true}}
auth:
  htpasswd: {{realm: mlspec-test, path: {tmp / 'htpasswd'}}}
http: {{addr: "127.0.0.1:{port}"}}
""")
    log = open(tmp / "registry.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([exe, "serve", str(tmp / "config.yml")], stdout=log,
                            stderr=subprocess.STDOUT)
    reg = Registry(port, storage)
    try:
        for _ in range(100):
            try:
                if reg.request("GET", "/v2/")[0] == 200:
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

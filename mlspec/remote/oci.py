"""An OCI registry, spoken to over the distribution API with `requests` (imported lazily).

Blobs: HEAD to skip what is there; upload as POST then one PUT streamed from the file (up to
MONOLITHIC_MAX), or PATCH chunks of CHUNK_BYTES, each streamed, and a closing PUT beyond it
(docker-registry took PATCH chunks at 60% of curl's speed, the single streamed PUT at 89%:
bench/remote_transfer.py); downloads streamed into the file and hashed on the way
(mlspec.remote.download).
Memory stays bounded whatever the size.
Manifests: by tag, JSON, bounded. Auth: a `GET /v2/` first; on 401 the challenge says Basic
or Bearer (mlspec.remote.auth). Every failure is a RemoteError, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from mlspec.remote import auth, download
from mlspec.remote.errors import RemoteError
from mlspec.remote.meter import Meter
from mlspec.remote.url import TAG_NAME, Remote

if TYPE_CHECKING:
    import requests

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CHUNK_BYTES = 64 << 20  # one PATCH of a chunked upload
MONOLITHIC_MAX = 4 << 30  # blobs up to this go in one streamed PUT
MAX_MANIFEST = 4 << 20
TIMEOUT = (10, 300)
TAG_PAGE = 1000
MAX_TAG_PAGES = 100


class _Window:
    """`length` bytes of a file from `start`, read in pieces (a streamed request body)."""

    def __init__(self, fh: IO[bytes], start: int, length: int, meter: Meter) -> None:
        self.fh, self.left, self.length, self.meter = fh, length, length, meter
        fh.seek(start)

    def __len__(self) -> int:
        return self.length

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.fh.read(max(n, 0))
        self.left -= len(data)
        self.meter.add(len(data))
        return data


def _adapter_class() -> type:
    import requests.adapters

    class BigBlocks(requests.adapters.HTTPAdapter):
        """Request bodies go out in download.READ_BYTES blocks (urllib3's default is 16 KiB)."""

        def init_poolmanager(self, *args: object, **kwargs: object) -> None:
            kwargs["blocksize"] = download.READ_BYTES
            super().init_poolmanager(*args, **kwargs)  # type: ignore[arg-type]

    return BigBlocks


def _big_blocks() -> requests.adapters.HTTPAdapter:
    return _adapter_class()()  # type: ignore[no-any-return]


class Registry:
    def __init__(self, remote: Remote, push: bool = False, delete: bool = False) -> None:
        import requests

        self.remote = remote
        self.base = f"{remote.scheme}://{remote.host}/v2/{remote.repository}"
        self.http = requests.Session()
        adapter = _big_blocks()
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)
        self.http.headers["User-Agent"] = "mlspec"
        actions = ["pull", *(["push"] if push else []), *(["delete"] if delete else [])]
        self.scope = f"repository:{remote.repository}:{','.join(actions)}"
        self._ready = False

    # -- transport -------------------------------------------------------------------------
    def _send(self, method: str, url: str, **kw: object) -> requests.Response:
        import requests

        try:
            return self.http.request(method, url, timeout=TIMEOUT, **kw)  # type: ignore[arg-type]
        except requests.exceptions.SSLError as exc:
            raise RemoteError("remote.unreachable", f"{self.remote}: TLS failed ({exc})",
                              "plain HTTP is used only for localhost registries") from None
        except requests.exceptions.RequestException as exc:
            raise RemoteError("remote.unreachable",
                              f"{self.remote}: cannot reach the registry "
                              f"({type(exc).__name__})",
                              "check the host and port, and that the registry runs") from None

    def _login(self) -> None:
        if self._ready:
            return
        root = f"{self.remote.scheme}://{self.remote.host}/v2/"
        resp = self._send("GET", root)
        resp.close()
        if resp.status_code == 401:
            scheme, params = auth.challenge(resp.headers.get("WWW-Authenticate", ""))
            creds = auth.credentials(self.remote.host)
            if scheme == "basic":
                if creds is None:
                    raise self._denied("the registry wants credentials and none are set")
                self.http.headers["Authorization"] = auth.basic(creds)
            elif scheme == "bearer" and params.get("realm"):
                self.http.headers["Authorization"] = "Bearer " + self._token(params, creds)
            else:
                raise RemoteError("remote.protocol",
                                  f"{self.remote}: unknown authentication challenge")
            check = self._send("GET", root)
            check.close()
            if check.status_code in (401, 403):
                raise self._denied("the registry refused the credentials")
        elif resp.status_code >= 400 and resp.status_code != 404:
            raise self._status(resp, "GET /v2/")
        self._ready = True

    def _token(self, params: dict[str, str], creds: tuple[str, str] | None) -> str:
        realm = params["realm"]
        if urlsplit(realm).scheme not in ("https", "http"):
            raise RemoteError("remote.protocol", f"{self.remote}: bad token realm")
        query = {"scope": self.scope, **({"service": params["service"]}
                                         if "service" in params else {})}
        headers = {"Authorization": auth.basic(creds)} if creds else {}
        resp = self._send("GET", realm + ("&" if "?" in realm else "?") + urlencode(query),
                          headers=headers)
        if resp.status_code in (401, 403):
            raise self._denied("the token service refused the credentials")
        if resp.status_code != 200 or len(resp.content) > MAX_MANIFEST:
            raise self._status(resp, "token")
        try:
            data = resp.json()
            token = data.get("token") or data.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RemoteError("remote.protocol", f"{self.remote}: the token service sent "
                              "no token")
        return token

    def _denied(self, why: str) -> RemoteError:
        return RemoteError("remote.auth", f"{self.remote}: {why}",
                           f"set {auth.USER_ENV} and {auth.PASSWORD_ENV}, or `docker login "
                           f"{self.remote.host}`")

    def _status(self, resp: requests.Response, what: str) -> RemoteError:
        if resp.status_code in (401, 403):
            return self._denied(f"{what}: denied ({resp.status_code})")
        return RemoteError("remote.protocol",
                           f"{self.remote}: {what} answered HTTP {resp.status_code}")

    def _call(self, method: str, path: str, **kw: object) -> requests.Response:
        self._login()
        return self._send(method, path if "://" in path else self.base + path, **kw)

    # -- blobs -----------------------------------------------------------------------------
    def has_blob(self, digest: str) -> bool:
        resp = self._call("HEAD", f"/blobs/{digest}", allow_redirects=True)
        if resp.status_code == 404:
            return False
        if resp.status_code != 200:
            raise self._status(resp, f"HEAD blob {digest[:19]}")
        return True

    def put_blob(self, path: Path, digest: str, size: int) -> None:
        resp = self._call("POST", "/blobs/uploads/")
        if resp.status_code != 202 or "Location" not in resp.headers:
            raise self._status(resp, "start of an upload")
        location = self._location(resp)
        meter = Meter("↑ push", size)
        with open(path, "rb") as fh:
            if size > MONOLITHIC_MAX:
                start = 0
                while start < size:
                    n = min(CHUNK_BYTES, size - start)
                    window = _Window(fh, start, n, meter)
                    resp = self._call("PATCH", location, data=window, headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{start}-{start + n - 1}",
                        "Content-Length": str(n)})
                    if resp.status_code != 202 or "Location" not in resp.headers:
                        raise self._status(resp, "upload chunk")
                    location = self._location(resp)
                    start += n
                body: object = b""
            else:
                body = _Window(fh, 0, size, meter)
            try:
                resp = self._call("PUT", _with_query(location, digest=digest), data=body,
                                  headers={"Content-Type": "application/octet-stream"})
            finally:
                meter.close()
        if resp.status_code != 201:
            if resp.status_code == 400 and b"DIGEST_INVALID" in resp.content[:4096]:
                raise RemoteError("remote.corrupt", f"{self.remote}: blob {digest[:19]}… "
                                  "changed while it was uploaded")
            raise self._status(resp, "end of an upload")

    def _location(self, resp: requests.Response) -> str:
        return urljoin(f"{self.remote.scheme}://{self.remote.host}/", resp.headers["Location"])

    def get_blob(self, digest: str, dest: Path, max_size: int | None = None) -> str:
        """Stream a blob into `dest`; its sha256 digest as received (the caller compares)."""
        resp = self._call("GET", f"/blobs/{digest}", stream=True)
        with resp:
            if resp.status_code == 404:
                raise RemoteError("remote.missing", f"{self.remote}: blob {digest[:19]}… is "
                                  "not in the registry")
            if resp.status_code != 200:
                raise self._status(resp, f"GET blob {digest[:19]}")
            try:
                out = open(dest, "wb")  # noqa: SIM115 (closed below)
            except OSError as exc:
                raise RemoteError("remote.io", f"cannot write {dest}: {exc}") from None
            meter = Meter("↓ pull", download.content_length(resp))
            with out:
                try:
                    src = download.plain_body(resp)
                    if src is not None:
                        return download.readinto_hash(src, out, max_size,
                                                      download.content_length(resp), meter)
                    return download.hash_to(resp.iter_content(download.READ_BYTES), out, max_size,
                                            meter)
                except download.WriteFailed as exc:
                    raise RemoteError("remote.io",
                                      f"cannot write {dest}: {exc.__cause__}") from None
                except Exception as exc:  # the stream's errors (requests' are OSErrors too)
                    raise RemoteError("remote.unreachable", f"{self.remote}: the download of "
                                      f"{digest[:19]}… broke off ({type(exc).__name__})"
                                      ) from None
                finally:
                    meter.close()

    # -- manifests -------------------------------------------------------------------------
    def get_manifest(self, tag: str) -> bytes | None:
        resp = self._call("GET", f"/manifests/{tag}", headers={"Accept": MANIFEST_TYPE},
                          stream=True)
        with resp:
            if resp.status_code == 404:
                return None
            if resp.status_code != 200:
                raise self._status(resp, f"GET manifest {tag[:20]}")
            body = resp.raw.read(MAX_MANIFEST + 1, decode_content=True)
        if len(body) > MAX_MANIFEST:
            raise RemoteError("remote.corrupt", f"{self.remote}: manifest {tag[:20]}… is too "
                              "big")
        return bytes(body)

    def has_manifest(self, tag: str) -> bool:
        resp = self._call("HEAD", f"/manifests/{tag}", headers={"Accept": MANIFEST_TYPE})
        if resp.status_code == 404:
            return False
        if resp.status_code != 200:
            raise self._status(resp, f"HEAD manifest {tag[:20]}")
        return True

    def put_manifest(self, tag: str, body: bytes) -> None:
        resp = self._call("PUT", f"/manifests/{tag}", data=body,
                          headers={"Content-Type": MANIFEST_TYPE})
        if resp.status_code != 201:
            raise self._status(resp, f"PUT manifest {tag[:20]}")

    def delete_manifest(self, tag: str, digest: str) -> bool:
        """Delete the manifest tagged `tag` (and so the tag) when it is still the one whose
        digest is `digest`: HEAD the tag for its `Docker-Content-Digest` (a registry that
        sends none is taken at `digest`), then DELETE by that digest (the distribution API
        deletes manifests by digest only). False when the tag is
        gone. A registry without deletes answers 405: `remote.delete-disabled`. The blobs
        stay until the registry's own garbage collection."""
        resp = self._call("HEAD", f"/manifests/{tag}", headers={"Accept": MANIFEST_TYPE})
        if resp.status_code == 404:
            return False
        if resp.status_code != 200:
            raise self._status(resp, f"HEAD manifest {tag[:20]}")
        if resp.headers.get("Docker-Content-Digest", digest).strip() != digest:
            raise RemoteError("remote.changed", f"{self.remote}: {tag[:20]}… changed while gc "
                              "ran; nothing more was deleted", "run `mlspec gc --remote` again")
        resp = self._call("DELETE", f"/manifests/{digest}")
        resp.close()
        if resp.status_code == 404:
            return False
        if resp.status_code == 405:
            raise RemoteError(
                "remote.delete-disabled", f"{self.remote}: the registry does not allow "
                "deleting manifests (HTTP 405)", "enable deletes (docker-registry / "
                "distribution: `storage: {delete: {enabled: true}}`; REGISTRY_STORAGE_DELETE_"
                "ENABLED=true), or use the registry's own retention policy")
        if resp.status_code not in (200, 202):
            raise self._status(resp, f"DELETE manifest {digest[:19]}")
        return True

    def tags(self) -> list[str]:
        """Every tag of the repository, sorted: `GET /tags/list` page by page, following the
        `Link: <…>; rel="next"` header (same origin only, at most MAX_TAG_PAGES pages); names
        that are not OCI tag names are dropped."""
        url, found = self.base + f"/tags/list?n={TAG_PAGE}", set[str]()
        for _ in range(MAX_TAG_PAGES):
            resp = self._call("GET", url, stream=True)
            with resp:
                if resp.status_code == 404:  # a repository nothing was pushed to yet
                    return []
                if resp.status_code != 200:
                    raise self._status(resp, "GET tags/list")
                body = resp.raw.read(MAX_MANIFEST + 1, decode_content=True)
                link = resp.links.get("next", {}).get("url")
            if len(body) > MAX_MANIFEST:
                raise RemoteError("remote.protocol", f"{self.remote}: tag list too big")
            found.update(_tag_names(body, self.remote))
            if not link:
                return sorted(found)
            url = urljoin(url, link)
            if urlsplit(url).netloc != urlsplit(self.base).netloc:
                raise RemoteError("remote.protocol", f"{self.remote}: the tag list points "
                                  "to another host")
        raise RemoteError("remote.protocol", f"{self.remote}: more than "
                          f"{MAX_TAG_PAGES * TAG_PAGE} tags", "delete old tags with the registry's "
                          "retention policy")


def _tag_names(body: bytes, remote: Remote) -> list[str]:
    import json

    try:
        names = json.loads(body).get("tags") or []
    except (ValueError, AttributeError):
        raise RemoteError("remote.protocol", f"{remote}: the tag list is not JSON") from None
    if not isinstance(names, list):
        raise RemoteError("remote.protocol", f"{remote}: the tag list is not a list")
    return [t for t in names if isinstance(t, str) and TAG_NAME.fullmatch(t)]


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))

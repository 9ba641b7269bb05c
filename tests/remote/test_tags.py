"""`Store.tags()`: the tags of a remote, from a real registry (docker-registry, htpasswd auth)
and from a file:// directory; hostile names dropped.

docker-registry 2.8 answers `tags/list` in one page whatever `n` asks, so the paging that
the distribution spec defines (and ghcr.io and distribution 3 do) is tested against a small
HTTP server in this process that pages as the spec says: `n`, `last`, `Link: <…>; rel="next"`.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from remote_registry import PASSWORD, USER, Registry, running_registry

from mlspec.remote import oci
from mlspec.remote.errors import RemoteError
from mlspec.remote.transfer import MANIFEST_TYPE, STEP_RUN, open_store
from mlspec.remote.url import TAG_NAME, parse

EMPTY = b"{}"
EMPTY_DIGEST = "sha256:" + hashlib.sha256(EMPTY).hexdigest()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with running_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


def _manifest(n: int) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                       "config": {"mediaType": STEP_RUN, "digest": EMPTY_DIGEST, "size": 2},
                       "layers": [], "annotations": {"n": str(n)}}).encode()


def _fill(store: object, tmp: Path, tags: list[str]) -> None:
    blob = tmp / "empty"
    blob.write_bytes(EMPTY)
    store.put_blob(blob, EMPTY_DIGEST, len(EMPTY))  # type: ignore[attr-defined]
    for i, tag in enumerate(tags):
        store.put_manifest(tag, _manifest(i))  # type: ignore[attr-defined]


TAGS = ["sha256-" + "a" * 64, "sha256-" + "b" * 64, "monitor-v1.0.0-1", "x_y.z-1"]


def test_registry_tags(registry: Registry, tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSPEC_REGISTRY_USER", USER)
    monkeypatch.setenv("MLSPEC_REGISTRY_PASSWORD", PASSWORD)
    store = open_store(parse(f"oci://{registry.host}/tags/store"), push=True)
    assert store.tags() == []  # nothing pushed yet: the registry answers 404
    _fill(store, tmp_path, TAGS)
    assert store.tags() == sorted(TAGS)


@pytest.fixture
def paging_registry() -> Iterator[tuple[str, list[str]]]:
    """(host, request log) of a registry stand-in serving TAGS page by page, as the
    distribution spec's tag listing does; its last page's Link points to another host when the
    request asks with `last=evil`."""
    log: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            log.append(self.path)
            url = urllib.parse.urlsplit(self.path)
            q = dict(urllib.parse.parse_qsl(url.query))
            if url.path == "/v2/":
                return self._send(200, b"{}")
            names = sorted(TAGS)
            after = q.get("last", "")
            page = [t for t in names if t > after][:int(q.get("n", "1000"))]
            headers = {}
            if page and page[-1] != names[-1]:
                nxt = f"/v2/a/b/tags/list?n={len(page)}&last={page[-1]}"
                if after == names[1]:
                    nxt = "http://elsewhere.example" + nxt
                headers["Link"] = f'<{nxt}>; rel="next"'
            self._send(200, json.dumps({"name": "a/b", "tags": page}).encode(), headers)

        def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            for k, v in {"Content-Length": str(len(body)), **(headers or {})}.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", log
    finally:
        server.shutdown()
        server.server_close()


def test_tags_follow_the_link_header(paging_registry: tuple[str, list[str]],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    host, log = paging_registry
    store = open_store(parse(f"oci://{host}/a/b"))
    monkeypatch.setattr(oci, "TAG_PAGE", 1)  # one tag a page: the second page's link is evil
    with pytest.raises(RemoteError) as err:
        store.tags()
    assert err.value.rule == "remote.protocol" and "another host" in err.value.message
    monkeypatch.setattr(oci, "TAG_PAGE", 3)  # two pages: 3 tags, then 1
    log.clear()
    assert store.tags() == sorted(TAGS)
    assert [p for p in log if "tags/list" in p] == [
        "/v2/a/b/tags/list?n=3", f"/v2/a/b/tags/list?n=3&last={sorted(TAGS)[2]}"]
    monkeypatch.setattr(oci, "TAG_PAGE", 2)  # a registry that never stops is cut off
    monkeypatch.setattr(oci, "MAX_TAG_PAGES", 1)
    with pytest.raises(RemoteError) as err:
        store.tags()
    assert "more than 2 tags" in err.value.message


def test_file_store_tags(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    store = open_store(parse(f"file://{root}"), push=True)
    assert store.tags() == []
    _fill(store, tmp_path, TAGS)
    (root / "manifests" / ".tmp-half.json").write_bytes(b"{")  # a writer's temporary file
    (root / "manifests" / "notes.txt").write_text("x")
    assert store.tags() == sorted(TAGS)


def test_hostile_tag_lists_are_filtered() -> None:
    remote = parse("oci://127.0.0.1:5000/a/b")
    body = json.dumps({"name": "a/b", "tags": ["ok-1", "../../etc", "", 7, "-x", "a" * 129,
                                               "sha256-" + "c" * 64]}).encode()
    assert oci._tag_names(body, remote) == ["ok-1", "sha256-" + "c" * 64]
    for bad in (b"not json", b'{"tags": "x"}', b"[1]"):
        with pytest.raises(RemoteError):
            oci._tag_names(bad, remote)


def test_pin_tags_fit_the_tag_grammar_and_never_collide() -> None:
    from mlspec.remote.transfer import pin_tag

    assert pin_tag("v1.0.0", "train") == "pin-v1.0.0-train"
    odd = [pin_tag("v1.0.0+build.1", "train"), pin_tag("v1.0.0-build.1", "train"),
           pin_tag("v" + "9" * 200 + ".0.0", "train"), pin_tag("v" + "9" * 200 + ".0.1", "train")]
    assert len(set(odd)) == 4
    assert all(TAG_NAME.fullmatch(t) for t in odd), odd

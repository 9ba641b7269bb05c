"""A local stand-in for the GitHub REST and GitLab v4 APIs, as far as `mlspec alert` uses them.

It is a mock, not GitHub or GitLab: a python http.server on 127.0.0.1 that records every
request (method, path, query, headers, body) and keeps the issues it is given in memory, so a
test can assert "one dispatch per run, one issue created then updated". Routes:

GitHub  POST /repos/O/R/actions/workflows/W/dispatches (204) · GET (paged)/POST /repos/O/R/issues ·
        PATCH /repos/O/R/issues/N (body, state) · POST /repos/O/R/issues/N/comments
GitLab  POST /projects/ID/trigger/pipeline (201) · GET (paged)/POST /projects/ID/issues ·
        PUT /projects/ID/issues/N (description, state_event) · POST …/issues/N/notes
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any  # JSON, or the form fields as a dict


@dataclass
class MockApi:
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    issues: list[dict[str, Any]] = field(default_factory=list)
    comments: list[tuple[int, str]] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)  # path regex -> status to answer
    # issue listings are paged by ?per_page&page: GitHub with a `Link: <…>; rel="next"`,
    # GitLab with X-Next-Page. Hostile answers: `endless` always names a next page; `next_base`
    # replaces this server's URL in GitHub's next link (another host)
    endless: bool = False
    next_base: str = ""

    def calls(self, method: str, pattern: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]


def _handler(state: MockApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _body(self) -> Any:
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n).decode() if n else ""
            if "json" in (self.headers.get("Content-Type") or ""):
                return json.loads(raw or "null")
            return {k: v[0] for k, v in parse_qs(raw).items()}

        def _send(self, status: int, payload: Any = None,
                  headers: dict[str, str] | None = None) -> None:
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            path = re.sub(r"^/api/v4", "", parts.path)
            body = self._body() if self.command in ("POST", "PATCH", "PUT") else None
            state.requests.append(Recorded(self.command, path, parse_qs(parts.query),
                                           dict(self.headers.items()), body))
            for pattern, status in state.fail.items():
                if re.search(pattern, path):
                    return self._send(status, {"message": "mock failure"})
            self._route(path, body, parse_qs(parts.query))

        def _page(self, path: str, query: dict[str, list[str]], items: list[Any],
                  gitlab: bool) -> None:
            size = int(query.get("per_page", ["20"])[0])
            page = int(query.get("page", ["1"])[0])
            more = state.endless or page * size < len(items)
            headers: dict[str, str] = {}
            if more and gitlab:
                headers["X-Next-Page"] = str(page + 1)
            elif more:
                rest = {k: v[0] for k, v in query.items() if k != "page"}
                base = state.next_base or state.url
                headers["Link"] = (f'<{base}{path}?{urlencode({**rest, "page": page + 1})}>; '
                                   'rel="next"')
            self._send(200, items[(page - 1) * size:page * size], headers)

        def _route(self, path: str, body: Any, query: dict[str, list[str]]) -> None:
            gitlab = path.startswith("/projects/")
            text = "description" if gitlab else "body"
            num = "iid" if gitlab else "number"
            if path.endswith("/dispatches"):
                return self._send(204)
            if path.endswith("/trigger/pipeline"):
                return self._send(201, {"id": len(state.requests)})
            if re.fullmatch(r"/(repos/[^/]+/[^/]+|projects/[^/]+)/issues", path):
                if self.command == "GET":
                    return self._page(path, query, [i for i in state.issues if i["state"] in
                                                    ("open", "opened")], gitlab)
                issue = {num: len(state.issues) + 1, "title": body["title"],
                         text: body.get(text, ""), "state": "opened" if gitlab else "open",
                         "labels": body.get("labels")}
                state.issues.append(issue)
                return self._send(201, issue)
            m = re.fullmatch(r"/.*/issues/(\d+)(/comments|/notes)?", path)
            if m:
                issue = next(i for i in state.issues if i[num] == int(m.group(1)))
                if m.group(2):
                    state.comments.append((int(m.group(1)), body["body"]))
                    return self._send(201, {"id": len(state.comments)})
                for key in (text, "state"):  # GitHub closes with {"state": "closed"}
                    if key in body:
                        issue[key] = body[key]
                if body.get("state_event") == "close":  # GitLab's way
                    issue["state"] = "closed"
                return self._send(200, issue)
            return self._send(404, {"message": "no such route in the mock"})

        do_GET = do_POST = do_PATCH = do_PUT = _serve

    return Handler


@contextmanager
def mock_api(host: str = "127.0.0.1") -> Iterator[MockApi]:
    state = MockApi()
    server = ThreadingHTTPServer((host, 0), _handler(state))
    state.url = f"http://{host}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()

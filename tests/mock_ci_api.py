"""A local stand-in for the GitHub REST and GitLab v4 APIs, as far as `mlspec alert` uses them.

It is a mock, not GitHub or GitLab: a python http.server on 127.0.0.1 that records every
request (method, path, query, headers, body) and keeps the issues it is given in memory, so a
test can assert "one dispatch per run, one issue created then updated". Routes:

GitHub  POST /repos/O/R/actions/workflows/W/dispatches (204) · GET/POST /repos/O/R/issues ·
        PATCH /repos/O/R/issues/N · POST /repos/O/R/issues/N/comments
GitLab  POST /projects/ID/trigger/pipeline (201) · GET/POST /projects/ID/issues ·
        PUT /projects/ID/issues/N · POST /projects/ID/issues/N/notes
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
from urllib.parse import parse_qs, urlsplit


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

        def _send(self, status: int, payload: Any = None) -> None:
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
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
            self._route(path, body)

        def _route(self, path: str, body: Any) -> None:
            gitlab = path.startswith("/projects/")
            text = "description" if gitlab else "body"
            num = "iid" if gitlab else "number"
            if path.endswith("/dispatches"):
                return self._send(204)
            if path.endswith("/trigger/pipeline"):
                return self._send(201, {"id": len(state.requests)})
            if re.fullmatch(r"/(repos/[^/]+/[^/]+|projects/[^/]+)/issues", path):
                if self.command == "GET":
                    return self._send(200, [i for i in state.issues if i["state"] in
                                            ("open", "opened")])
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
                issue[text] = body[text]
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

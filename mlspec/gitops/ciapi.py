"""The one client of the GitHub REST and GitLab v4 APIs (`mlspec alert`, `mlspec rollback`).

- Headers: GitHub `Authorization: Bearer`, its media type and API version; GitLab
  `PRIVATE-TOKEN` (left out for a form POST, whose token is a field: the pipeline trigger).
- Redirects are not followed but refused (requests drops `Authorization` on another host,
  not GitLab's `PRIVATE-TOKEN`).
- Failures raise `ApiError` with what was asked, the method, the URL, the status and the
  API's own message (at most 300 characters); a token is never in a message nor in a URL.
- Retries: none. Every call that changes something is a POST/PATCH/PUT that is not
  idempotent (a dispatch retried after a timeout can start two runs), so a failure is
  reported with what to run again; the callers turn it into a Diagnostic or a CheckFailed.
- Pagination (`pages`): GitHub's `Link: <…>; rel="next"`, GitLab's `Link` or `X-Next-Page`,
  at most MAX_PAGES pages, and a next page only under the same API base URL, so a hostile or
  broken API can neither loop forever nor be handed the token for another host.

`requests` is imported lazily: only the commands that call an API pay for it.
"""

from __future__ import annotations

from typing import Any

TIMEOUT = 30
PER_PAGE = 100  # both APIs' maximum page size
MAX_PAGES = 20  # 2,000 items: far beyond one label's open issues


class ApiError(Exception):
    """An HTTP call that failed: the message names the call, never a token."""

    def __init__(self, what: str, method: str, url: str, status: int | None, detail: str):
        self.what, self.method, self.url, self.status, self.detail = (what, method, url,
                                                                      status, detail)
        problem = f"HTTP {status} {detail}".rstrip() if status is not None else detail
        super().__init__(f"{what}: {method} {url}: {problem}")


class Api:
    """JSON calls to one CI API: `platform` github | gitlab, `base` its URL (no trailing /)."""

    def __init__(self, platform: str, base: str):
        import requests  # lazy: only the commands that call an API need it

        self.platform, self.base = platform, base.rstrip("/")
        self.session = requests.Session()

    def _headers(self, token: str, form: bool) -> dict[str, str]:
        if self.platform == "github":
            return {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
                    "X-GitHub-Api-Version": "2022-11-28"}
        return {"PRIVATE-TOKEN": token} if token and not form else {}

    def _send(self, method: str, url: str, what: str, token: str, json: Any,
              data: dict[str, str] | None, params: dict[str, str] | None) -> Any:
        import requests

        try:
            res = self.session.request(method, url, headers=self._headers(token, data is not None),
                                       json=json, data=data, params=params, timeout=TIMEOUT,
                                       allow_redirects=False)
        except requests.RequestException as err:
            raise ApiError(what, method, url, None, type(err).__name__) from None
        if res.status_code >= 300:  # a redirect too: requests would resend PRIVATE-TOKEN
            raise ApiError(what, method, url, res.status_code, _message(res))
        return res

    def call(self, method: str, path: str, what: str, *, token: str, json: Any = None,
             data: dict[str, str] | None = None, params: dict[str, str] | None = None) -> Any:
        """One request to `{base}/{path}`; its JSON answer, or None when it has none."""
        return _json(self._send(method, f"{self.base}/{path}", what, token, json, data, params))

    def pages(self, path: str, what: str, *, token: str,
              params: dict[str, str] | None = None) -> list[Any]:
        """Every item of a listing, page after page (see the module's docstring)."""
        url: str | None = f"{self.base}/{path}"
        query: dict[str, str] | None = {**(params or {}), "per_page": str(PER_PAGE)}
        items: list[Any] = []
        for _ in range(MAX_PAGES):
            assert url is not None
            res = self._send("GET", url, what, token, None, None, query)
            page = _json(res)
            if not isinstance(page, list):
                raise ApiError(what, "GET", url, None, "the answer is not a list")
            items += page
            url, query = self._next(res, url, query, what)
            if url is None:
                return items
        raise ApiError(what, "GET", f"{self.base}/{path}", None,
                       f"more than {MAX_PAGES} pages of {PER_PAGE}: stopped")

    def _next(self, res: Any, url: str, query: dict[str, str] | None,
              what: str) -> tuple[str | None, dict[str, str] | None]:
        """The next page's URL and query: the Link header's (a full URL), else GitLab's
        X-Next-Page (a number for this URL's `page`); None at the last page."""
        link = (res.links or {}).get("next", {}).get("url")
        if link:
            if not str(link).startswith(self.base + "/"):
                raise ApiError(what, "GET", url, None,
                               "the next page is not under the API's base URL: refused")
            return str(link), None  # the link carries the whole query
        after = (res.headers.get("X-Next-Page") or "").strip()
        if self.platform == "gitlab" and after:
            if not after.isdigit():
                raise ApiError(what, "GET", url, None, "X-Next-Page is not a page number")
            return url, {**(query or {}), "page": after}
        return None, None


def _json(res: Any) -> Any:
    if res.content and "json" in res.headers.get("Content-Type", ""):
        try:
            return res.json()
        except ValueError:
            return None
    return None


def _message(res: Any) -> str:
    try:
        body = res.json()
    except ValueError:
        return (res.reason or "")[:300]
    msg = body.get("message") or body.get("error") if isinstance(body, dict) else None
    return str(msg)[:300].replace("\n", " ") if msg else (res.reason or "")

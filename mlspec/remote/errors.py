"""The remote's failures, as data: a rule, a message, a hint and the exit code they mean.

Exit codes of `mlspec push` / `mlspec pull` (and of `mlspec run` when its pull fails):
0 done; 1 a named step is not in the remote (`remote.missing`) or is stale (push);
2 bad input (spec, `MLSPEC_REMOTE`, no remote configured); 3 the remote cannot be used
(`remote.unreachable`, `remote.auth`, `remote.protocol`, `remote.io`; `mlspec gc --remote`:
`remote.delete-disabled`, a registry that answers 405 to a DELETE, and `remote.changed`, a tag
re-pushed while gc ran); 4 the remote sent
content that does not match its hashes (`remote.corrupt`): nothing of it was put in place.
"""

from __future__ import annotations

EXIT_MISSING = 1
EXIT_UNUSABLE = 3
EXIT_CORRUPT = 4
CODES = {"remote.missing": EXIT_MISSING, "remote.corrupt": EXIT_CORRUPT}


class RemoteError(Exception):
    def __init__(self, rule: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.hint = hint

    @property
    def code(self) -> int:
        return CODES.get(self.rule, EXIT_UNUSABLE)

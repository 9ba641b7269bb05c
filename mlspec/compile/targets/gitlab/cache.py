"""GitLab cache keys: computed at run time by the flow's first job.

GitLab reads a job's `cache:key` before its script runs, so a key cannot come from inside the
job. The flow's first job runs `mlspec status --ci-keys` (mlspec.run.cikeys: every key from
the committed spec and files, chaining upstream keys instead of hashing outs that do not exist
yet) into a dotenv report; GitLab hands its variables to the jobs that need that job, usable
in `cache:key`. No key is baked into the file, so a param, dep or data change never makes
`.gitlab-ci.yml` stale. A hit only saves time: `mlspec run` still checks restored outs.
"""

from __future__ import annotations

import re

from mlspec.compile.model import KEYS_COMMAND

KEYS_ENV = "mlspec-keys.env"


def env_key(name: str) -> str:
    return re.sub(r"[^A-Z0-9_]", "_", name.upper())


def keys_script() -> list[str]:
    """The first job's commands: the keys as a dotenv report (printed for the log)."""
    return [f"{KEYS_COMMAND} > {KEYS_ENV}", f"cat {KEYS_ENV}"]

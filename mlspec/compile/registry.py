"""The compile targets, in one place: name -> (module, globs of the files it owns).

Pure data with no imports, so `mlspec validate` can check `ci.targets` against it without
loading any renderer. A module named here exposes `TARGET`, an object implementing
`mlspec.compile.targets.Target`. Adding a target: a package under mlspec/compile/targets/,
its templates under templates/<name>/, and one line here.
"""

from __future__ import annotations

TARGETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "github": ("mlspec.compile.targets.github", (".github/workflows/mlspec-*.yml",)),
    "gitlab": ("mlspec.compile.targets.gitlab", (".gitlab-ci.yml", ".gitlab/mlspec/*")),
    "docker": ("mlspec.compile.targets.docker", ("docker/*.Dockerfile", ".dockerignore")),
}

# Targets a spec may list under `ci.targets` (docker is implied by `inference`).
CI_TARGETS: tuple[str, ...] = ("github", "gitlab")

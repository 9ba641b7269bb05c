"""GitLab rule conditions for branches and tags (CI/CD variable expressions)."""

from __future__ import annotations


def tag_regex(glob: str) -> str:
    """A tag glob (`v*`) as a GitLab (RE2) regex literal anchored at both ends."""
    out = []
    for ch in glob:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch.isalnum() or ch in "_-":
            out.append(ch)
        else:
            out.append("[" + ch + "]")
    return "/^" + "".join(out) + "$/"


def tag_condition(globs: tuple[str, ...] | list[str]) -> str:
    tags = " || ".join(f"$CI_COMMIT_TAG =~ {tag_regex(g)}" for g in globs)
    if len(globs) > 1:
        tags = f"({tags})"
    return f'{tags} && $CI_COMMIT_REF_PROTECTED == "true"'


def branch_condition(branches: list[str]) -> str:
    names = " || ".join(f'$CI_COMMIT_BRANCH == "{b}"' for b in branches)
    if len(branches) > 1:
        names = f"({names})"
    return f'$CI_PIPELINE_SOURCE == "push" && {names}'

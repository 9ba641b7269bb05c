"""Types shared by every stage model: names, repository paths, cron, secret names."""

from __future__ import annotations

import posixpath
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError

from mlspec import layout
from mlspec.spec.cron import cron_problem


class Strict(BaseModel):
    """Base for every spec model: unknown fields are errors, types are not coerced."""

    # defer_build: only Spec (and Step on the partial-validation path) ever validate, so
    # building a validator for every nested model at import would be wasted start-up time
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


def fail(rule: str, message: str, hint: str | None = None) -> PydanticCustomError:
    # the error type is the diagnostic's rule; the hint rides in the context
    return PydanticCustomError(rule, message, {"hint": hint} if hint else None)


NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
IDENT_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
PARAM_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")  # scikit-learn has `C`, `alpha`, `l1_ratio`
ENV_RE = re.compile(r"^[A-Z_][A-Z0-9_]{0,99}$")


def _check_name(v: str) -> str:
    if not NAME_RE.fullmatch(v):
        raise fail("spec.name", f"name '{v}' is not allowed",
                   "use lowercase letters, digits, '_' and '-' (at most 63 characters)")
    return v


def _check_ident(v: str) -> str:
    if not IDENT_RE.fullmatch(v):
        raise fail("spec.name", f"name '{v}' is not allowed",
                   "use a lowercase letter, then lowercase letters, digits and '_'")
    return v


def _check_param(v: str) -> str:
    if not PARAM_RE.fullmatch(v):
        raise fail("spec.name", f"param name '{v}' is not allowed",
                   "use letters, digits and '_', starting with a letter or '_' (it becomes "
                   "MLSPEC_PARAM_<NAME>)")
    return v


def _check_env(v: str) -> str:
    if not ENV_RE.fullmatch(v):
        raise fail("spec.secret-name", f"'{v}' is not a secret's name",
                   "give the NAME of a CI secret (e.g. REGISTRY_TOKEN), never its value")
    return v


def normalise_path(v: str) -> str:
    if not v or not v.strip():
        raise fail("spec.path", "empty path")
    if "\x00" in v or "\\" in v:
        raise fail("spec.unsafe-path", f"path '{v}' contains a backslash or NUL",
                   "use forward slashes")
    if v.startswith("~"):
        raise fail("spec.unsafe-path", f"path '{v}' starts with '~'",
                   "paths are relative to the repository root")
    if v.startswith("/") or re.match(r"^[A-Za-z]:", v):
        raise fail("spec.unsafe-path", f"absolute path '{v}'",
                   "paths are relative to the repository root")
    trailing = v.endswith("/")
    norm = posixpath.normpath(v)
    if norm == ".." or norm.startswith("../"):
        raise fail("spec.unsafe-path", f"path '{v}' leaves the repository",
                   "paths are relative to the repository root and stay inside it")
    if norm == ".":
        raise fail("spec.unsafe-path", "path '.' is the whole repository",
                   "name a file or a directory inside it")
    if norm.split("/")[0] in (".git", layout.STATE):
        raise fail("spec.unsafe-path", f"path '{v}' is inside {norm.split('/')[0]}/",
                   "that directory belongs to git / mlspec")
    return norm + "/" if trailing else norm


_REF_CHAR = re.compile(r"[A-Za-z0-9_./-]")


def ref_problem(v: str, glob: bool = False) -> str | None:
    """Why `v` is not a safe git ref name (or, glob=True, tag pattern): git check-ref-format's
    rules, narrowed to a plain character set, and no leading '-' (it would read as an option)."""
    if not v:
        return "it is empty"
    if v.startswith("-"):
        return "it starts with '-', so git would read it as an option"
    for c in v:
        if not (_REF_CHAR.match(c) or (glob and c == "*")):
            return f"{c!r} is not allowed (use letters, digits, '_', '.', '/', '-')"
    if ".." in v:
        return "it contains '..'"
    if v.startswith("/") or v.endswith("/") or "//" in v:
        return "it starts or ends with '/', or holds '//'"
    if v.endswith("."):
        return "it ends with '.'"
    for part in v.split("/"):
        if part.startswith("."):
            return f"its component '{part}' starts with '.'"
        if part.endswith(".lock"):
            return f"its component '{part}' ends with '.lock'"
    return None


def _check_branch(v: str) -> str:
    problem = ref_problem(v)
    if problem:
        raise fail("spec.git-ref", f"'{v}' is not a safe git branch name: {problem}",
                   "a branch name like main or release/1.x")
    return v


def _check_tag_prefix(v: str) -> str:
    problem = ref_problem(v + "0.1.0")  # the prefix starts every release tag
    if problem or "/" in v:
        raise fail("spec.git-ref", f"tag prefix '{v}' does not make safe git tags: "
                   f"{problem or 'it holds /'}", "e.g. v (tags v1.2.0) or release- ; or ''")
    return v


def check_shell_words(v: str) -> str:
    """A command mlspec itself splits into words (shlex): quotes must balance."""
    import shlex

    try:
        shlex.split(v)
    except ValueError as exc:
        raise fail("spec.shell-syntax", f"cannot split '{v}' into words: {str(exc).lower()}",
                   "close the quote, or escape it with a backslash") from None
    return v


# an image reference: [registry[:port]/]repository[:tag][@sha256:digest], lowercase repository
IMAGE_REF = re.compile(
    r"^(?P<repo>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$")


def _check_image_ref(v: str) -> str:
    if not IMAGE_REF.fullmatch(v):
        raise fail("spec.image", f"'{v}' is not an image reference",
                   "like python:3.11-slim or ghcr.io/acme/base:1.2@sha256:…")
    return v


def _check_cron(v: str) -> str:
    problem = cron_problem(v)
    if problem:
        raise fail("spec.cron", f"bad cron '{v}': {problem}",
                   "five fields: minute hour day-of-month month day-of-week, e.g. '0 3 * * 1'")
    return v


def _no_float_version(v: Any) -> Any:
    if isinstance(v, int | float) and not isinstance(v, bool):
        raise fail("spec.unquoted-version",
                   f"version written as the number {v!r}; YAML drops trailing zeros",
                   f"quote it: \"{v}\" (and write 3.10 as \"3.10\")")
    return v


Name = Annotated[str, AfterValidator(_check_name)]
Ident = Annotated[str, AfterValidator(_check_ident)]
ParamName = Annotated[str, AfterValidator(_check_param)]
EnvName = Annotated[str, AfterValidator(_check_env)]
RelPath = Annotated[str, AfterValidator(normalise_path)]
Cron = Annotated[str, AfterValidator(_check_cron)]
ImageRef = Annotated[str, AfterValidator(_check_image_ref)]
Branch = Annotated[str, AfterValidator(_check_branch)]
TagPrefix = Annotated[str, AfterValidator(_check_tag_prefix)]
ShellWords = Annotated[str, AfterValidator(check_shell_words)]
VersionStr = Annotated[str, BeforeValidator(_no_float_version)]
Scalar = str | int | float | bool

"""`mlspec init`: write a starter spec, its schema and small example scripts into a repository.

The files come from templates/init/ (shipped in the wheel as mlspec.templates). Nothing is
overwritten: when any of its own files (the spec, the schema, the scripts) exists, init reports
each one and writes nothing (exit 2). A .gitignore or requirements.txt the repository already
has is kept as it is, and init says which lines it lacks.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unicodedata
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from mlspec import layout
from mlspec.errors import Diagnostic, MlspecError, Outcome
from mlspec.fsutil import write_atomic
from mlspec.gitops.lockmerge import GIT_CONFIG_COMMAND
from mlspec.spec.ci import OWN_REGISTRY, registry_host
from mlspec.spec.common import NAME_RE
from mlspec.spec.schema import schema_text
from mlspec.specpath import find_upward

# target path in the repository -> template under templates/init/
FILES = {
    "mlspec.yaml": "mlspec.yaml.j2",
    "mlspec.schema.json": None,  # from the models: `mlspec schema`
    "requirements.txt": "requirements.txt",
    ".gitignore": "gitignore",
    ".gitattributes": "gitattributes",  # the merge driver of mlspec.lock (gitops/lockmerge.py)
    "src/prepare.py": "src/prepare.py",
    "src/train.py": "src/train.py",
    "src/evaluate.py": "src/evaluate.py",
}
# files a repository often has already: init keeps the user's (untouched) and says what to add
SHARED = (".gitignore", ".gitattributes", "requirements.txt")


TARGETS = ("github", "gitlab")
DEFAULT_NAME = "ml-project"


SECRET_USER, SECRET_TOKEN = "REGISTRY_USER", "REGISTRY_TOKEN"  # `init`'s names for them


@dataclass(frozen=True)
class Choices:
    """What `mlspec init` decided, shown to the user and rendered into the spec."""

    name: str
    targets: tuple[str, ...] = ("github",)
    image: str | None = None  # the serving image, with --with-serving

    @property
    def foreign(self) -> tuple[str, ...]:
        """The targets whose job token cannot push the image (another CI's registry): they
        log in with named secrets (spec.ci's registry-credentials rule)."""
        if self.image is None:
            return ()
        host = registry_host(self.image)
        return tuple(t for t in self.targets if OWN_REGISTRY[t] != host)


def slug(text: str) -> str:
    """A valid project name from any text: accents transliterated (ñandú -> nandu), then
    lowercase [a-z0-9_-], runs of separators collapsed, at most 63 characters."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^a-z0-9_-]+", "-", ascii_text.lower())
    name = re.sub(r"[-_]{2,}", "-", name).strip("-_")
    return name[:63].strip("-_")


def project_name(directory: Path) -> str:
    """A valid project name from a directory name (see slug); 'ml-project' when nothing is
    left of it."""
    return slug(Path(os.path.realpath(directory)).name) or DEFAULT_NAME


def parse_targets(text: str | None) -> tuple[str, ...]:
    """`--target github,gitlab` -> ('github', 'gitlab'); an unknown one is a usage error."""
    if text is None:
        return ("github",)
    wanted = [t.strip().lower() for t in text.split(",") if t.strip()]
    bad = [t for t in wanted if t not in TARGETS]
    if bad or not wanted:
        raise MlspecError([Diagnostic("", 0, 0, f"unknown CI target '{', '.join(bad) or text}'",
                                      "init.target", "choose from: github, gitlab (comma-"
                                      "separated, e.g. --target github,gitlab)")])
    return tuple(dict.fromkeys(wanted))


def _origin_owner(directory: Path) -> tuple[str, str] | None:
    """(host, owner) of the repository's origin remote, e.g. ('github.com', 'acme')."""
    try:
        url = subprocess.run(["git", "remote", "get-url", "origin"], cwd=directory,
                             capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"(github\.com|gitlab\.com)[:/]+([A-Za-z0-9_.-]+)/", url.strip())
    return (m.group(1), m.group(2).lower()) if m else None


def image_name(directory: Path, name: str, targets: tuple[str, ...]) -> str:
    """The serving image: the registry of the first target (ghcr.io, GitLab's), the owner of
    the origin remote when there is one, else a placeholder to edit."""
    origin = _origin_owner(directory) if os.path.isdir(directory) else None
    gitlab = targets[0] == "gitlab"
    if origin is not None:
        gitlab = origin[0] == "gitlab.com"
    owner = slug(origin[1]) if origin is not None else "your-org"
    registry = "registry.gitlab.com" if gitlab else "ghcr.io"
    return f"{registry}/{owner or 'your-org'}/{re.sub(r'[-_]+', '-', name)}"


def render(name: str, choices: Choices | None = None) -> dict[str, str]:
    """The files `mlspec init` writes, by repository path."""
    import jinja2


    root = files("mlspec.templates").joinpath("init")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    out: dict[str, str] = {}
    for target, template in FILES.items():
        if template is None:
            out[target] = schema_text()
            continue
        text = root.joinpath(*template.split("/")).read_text(encoding="utf-8")
        if template.endswith(".j2"):
            env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                     trim_blocks=True, lstrip_blocks=True,
                                     autoescape=False)
            c = choices or Choices(name)
            text = env.from_string(text).render(name=name, python=python,
                                                targets=", ".join(c.targets), image=c.image,
                                                foreign=", ".join(c.foreign),
                                                secret_user=SECRET_USER, secret_token=SECRET_TOKEN)
        out[target] = text
    return out


def _keep_note(path: Path, shown: str, ours: str) -> str:
    """What the user's own .gitignore / requirements.txt lacks of the starter's lines."""
    try:
        theirs = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        theirs = ""
    def key(line: str) -> str:  # a requirement is present whatever its version specifier
        return re.split(r"[<>=!~; \[]", line.strip(), maxsplit=1)[0].lower()

    have = {key(ln) for ln in theirs.splitlines()}
    missing = [ln for ln in ours.splitlines()
               if ln.strip() and not ln.startswith("#") and key(ln) not in have]
    if not missing:
        return f"kept {shown}"
    return f"kept {shown}; add: {' '.join(missing)}"


def _name_choice(directory: Path, name: str | None) -> tuple[str, str]:
    """(project name, how it was chosen)."""

    if name is not None:
        if not NAME_RE.fullmatch(name):
            suggestion = slug(name)
            hint = "use lowercase letters, digits, '_' and '-' (at most 63 characters)" + (
                f", e.g. --name {suggestion}" if suggestion else "")
            raise MlspecError([Diagnostic("", 0, 0, f"project name '{name}' is not allowed",
                                          "spec.name", hint)])
        return name, "given with --name"
    folder = Path(os.path.realpath(directory)).name
    chosen = project_name(directory)
    if chosen == folder:
        return chosen, "the directory's name; change it with --name"
    return chosen, f"from the directory name '{folder}'; change it with --name"


def _refuse_inside_a_project(directory: Path, nested: bool) -> None:
    """`cd src && mlspec init` would start a second project inside the first one: refused,
    naming the spec above (the other commands find it from here), unless --nested."""

    here = Path(os.path.abspath(directory))
    above = find_upward(here.parent) if not (here / layout.SPEC).exists() else None
    if above is None or nested:
        return
    shown = os.path.relpath(above)
    raise MlspecError([Diagnostic(
        "", 0, 0, f"{here} is inside the project of {shown}; init would start a second one",
        "init.nested", f"mlspec commands run here use {shown} (they look upward, as git does); "
        "to start a separate project in this directory anyway: mlspec init --nested")])


def scaffold(directory: Path, name: str | None, targets: str | None = None,
             serving: bool = False, nested: bool = False) -> Outcome:
    directory = Path(directory)
    shown = directory.as_posix().rstrip("/") or "."
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise MlspecError([Diagnostic(shown, 0, 0, f"'{shown}' is not a directory", "init.target",
                                      None)])
    name, how = _name_choice(directory, name)
    chosen_targets = parse_targets(targets)
    choices = Choices(name, chosen_targets,
                      image_name(directory, name, chosen_targets) if serving else None)
    prefix = "" if shown == "." else shown + "/"
    _refuse_inside_a_project(directory, nested)
    existing = [t for t in FILES if t not in SHARED and os.path.lexists(directory / t)]
    if existing:
        raise MlspecError([
            Diagnostic(f"{prefix}{t}", 0, 0, f"{prefix}{t} already exists; init overwrites nothing",
                       "init.exists", "run init in a repository without an mlspec project, "
                       "or move the file away") for t in existing])
    rendered = render(name, choices)
    kept = [t for t in SHARED if os.path.lexists(directory / t)]
    notes = [_keep_note(directory / t, f"{prefix}{t}", rendered.pop(t)) for t in kept]
    written: list[Path] = []
    try:
        for target, text in rendered.items():
            path = directory / target
            write_atomic(path, text)
            written.append(path)
    except OSError as exc:
        for path in written:  # leave the directory as it was
            path.unlink(missing_ok=True)
        raise MlspecError([Diagnostic(shown, 0, 0, f"cannot write the scaffold: {exc}",
                                      "init.write", None)]) from None
    lines = [f"created {prefix}{t}" for t in rendered] + [n for n in notes if n]
    lines += ["", f"project name: {name} ({how})",
              f"CI targets: {', '.join(chosen_targets)} (ci.targets; change with --target "
              "github,gitlab)"]
    if choices.image:
        lines.append(f"serving: image {choices.image}, deployed on tags v* after approval "
                     "(the inference section; edit inference.image.name to your registry)")
        if choices.foreign:
            lines.append(f"registry login: the {' and '.join(choices.foreign)} pipeline pushes "
                         f"to {registry_host(choices.image)} with the CI secrets "
                         f"{SECRET_USER} and {SECRET_TOKEN} (ci.secrets; create them in each "
                         "CI: a registry user and a token that may push)")
    else:
        lines.append("serving: none (add an inference section with --with-serving)")
    lines += ["", "mlspec.lock merges entry by entry (.gitattributes); enable the driver in "
              f"each clone: {GIT_CONFIG_COMMAND}"]
    steps = "mlspec validate && mlspec run && mlspec compile"
    lines += ["", f"next: cd {shown} && {steps}" if prefix else f"next: {steps}"]
    return Outcome(text="\n".join(lines) + "\n")

"""Where project repositories live and how they are made: bare repositories under
``<home>/repos/<project>/<name>.git``. The directory is the whole state (description and
the archived flag live in the repository's own config), so a backup of the state
directory is a backup of every repository, and shared storage scales it out."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from datalibrary.config import Settings
from datalibrary.errors import Conflict, InvalidInput, NotFound

REPO_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
# The same rule as one pattern for request schemas (check_repo_name's ".git" and ".." included).
REPO_NAME_PATTERN = re.compile(r"^(?!.*\.\.)[a-z0-9][a-z0-9._-]{0,62}(\.git)?$")
PROJECT_NAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
GIT = "git"


def root(settings: Settings) -> Path:
    return settings.home / "repos"


def check_repo_name(name: str) -> str:
    name = name.removesuffix(".git")
    if not REPO_NAME.match(name) or ".." in name:
        raise InvalidInput(
            "repository name must be 1-63 characters: lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            field="name",
        )
    return name


def repo_path(settings: Settings, project: str, name: str) -> Path:
    """The bare repository's directory; names are checked so no path leaves the root."""
    if not PROJECT_NAME.match(project):
        raise NotFound(f"no project named '{project}'")
    return root(settings) / project / f"{check_repo_name(name)}.git"


def git(path: Path, *args: str, check: bool = True, input: bytes | None = None) -> str:  # noqa: A002
    """Run a plumbing command in a bare repository; its output as text."""
    result = subprocess.run(  # noqa: S603
        [GIT, "--git-dir", str(path), *args],
        capture_output=True,
        input=input,
        check=False,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(path)},
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"git {args[0]} failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout.decode(errors="replace")


@dataclass(frozen=True)
class RepoFacts:
    project: str
    name: str
    description: str
    archived: bool
    path: Path


def _archived(path: Path) -> bool:
    """``datalibrary.archived`` from the repository's config, read here rather than with
    ``git config`` (a process on every clone, fetch and push). Only ``set_archived`` writes
    it, as ``[datalibrary]`` / ``archived = true|false``; the last value wins, as in Git."""
    section, archived = "", False
    try:
        text = (path / "config").read_text(errors="replace")
    except OSError:
        return False
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if line.startswith("["):
            section = line.strip("[]").strip().lower()
        elif section == "datalibrary" and "=" in line:
            key, _, value = line.partition("=")
            if key.strip().lower() == "archived":
                archived = value.strip().lower() == "true"
    return archived


def facts(settings: Settings, project: str, name: str) -> RepoFacts:
    path = repo_path(settings, project, name)
    if not (path / "HEAD").is_file():
        raise NotFound(f"no repository '{name}' in project '{project}'")
    description = (path / "description").read_text().strip() if (path / "description").exists() else ""
    if description.startswith("Unnamed repository"):
        description = ""
    return RepoFacts(project, path.name.removesuffix(".git"), description, _archived(path), path)


def list_names(settings: Settings, project: str) -> list[str]:
    directory = root(settings) / project
    if not PROJECT_NAME.match(project) or not directory.is_dir():
        return []
    return sorted(p.name.removesuffix(".git") for p in directory.glob("*.git") if (p / "HEAD").is_file())


def create(settings: Settings, project: str, name: str, description: str) -> RepoFacts:
    path = repo_path(settings, project, name)
    if path.exists():
        raise Conflict(f"project '{project}' already has a repository named '{path.name[:-4]}'")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.creating")
    subprocess.run(  # noqa: S603
        [GIT, "init", "--bare", "--quiet", "--initial-branch=main", str(temporary)],
        check=True,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(path.parent), "GIT_CONFIG_NOSYSTEM": "1"},
    )
    git(temporary, "config", "http.receivepack", "true")
    git(temporary, "config", "receive.fsckObjects", "true")
    (temporary / "description").write_text(description.strip() + "\n")
    temporary.rename(path)  # appears whole or not at all
    return facts(settings, project, name)


def set_archived(settings: Settings, project: str, name: str, archived: bool) -> RepoFacts:
    path = facts(settings, project, name).path
    git(path, "config", "datalibrary.archived", "true" if archived else "false")
    return facts(settings, project, name)


def refs(path: Path) -> dict[str, str]:
    """ref name -> commit id, for comparing before and after a push.

    Read from ``packed-refs`` and the loose files under ``refs/`` (loose wins, as in Git)
    rather than with ``git for-each-ref``: two processes fewer on every push. A repository
    in the reftable format (which the platform never creates) is read by Git."""
    if (path / "reftable").exists():
        return _refs_by_git(path)
    found: dict[str, str] = {}
    packed = path / "packed-refs"
    if packed.exists():
        for line in packed.read_text(errors="replace").splitlines():
            commit, _, name = line.partition(" ")
            if name and len(commit) >= 40 and not line.startswith(("#", "^")):
                found[name.strip()] = commit
    base = path / "refs"
    for file in base.rglob("*") if base.is_dir() else []:
        if file.is_file() and not file.name.endswith(".lock"):
            content = file.read_text(errors="replace").strip()
            if content.startswith("ref: "):  # a symbolic ref: its target is listed itself
                continue
            if len(content) >= 40:
                found[f"refs/{file.relative_to(base).as_posix()}"] = content
    return found


def _refs_by_git(path: Path) -> dict[str, str]:
    out = git(path, "for-each-ref", "--format=%(refname) %(objectname)", check=False)
    found: dict[str, str] = {}
    for line in out.splitlines():
        name, _, commit = line.partition(" ")
        if commit:
            found[name] = commit
    return found

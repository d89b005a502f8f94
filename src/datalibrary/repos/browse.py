"""Read a repository's branches, commits and files with Git's plumbing (no work tree)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from datalibrary.errors import InvalidInput, NotFound, TooLarge
from datalibrary.repos.storage import git

CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # git takes paths as arguments: no NUL, no newline
REF = re.compile(r"^[A-Za-z0-9._/-]{1,200}$")
MAX_BLOB = 2_000_000
FIELD = "\x1f"
RECORD = "\x1e"


@dataclass(frozen=True)
class Commit:
    id: str
    author: str
    authored_at: str
    message: str
    parents: list[str]


@dataclass(frozen=True)
class Entry:
    name: str
    path: str
    kind: str  # blob | tree
    size: int | None


def _ref(ref: str | None) -> str:
    ref = ref or "HEAD"
    if not REF.match(ref) or ref.startswith("-") or ".." in ref:
        raise InvalidInput("a ref is a branch name, a tag or a commit id", field="ref")
    return ref


def _path(path: str) -> str:
    path = path.strip("/")
    if (any(part in ("", ".", "..") for part in path.split("/")) and path) or CONTROL.search(path):
        raise InvalidInput("paths are relative to the repository's root, without '..'", field="path")
    return path


def is_empty(repo: Path) -> bool:
    return not git(repo, "for-each-ref", "--count=1", "refs/heads", check=False).strip()


def default_branch(repo: Path) -> str:
    head = git(repo, "symbolic-ref", "--short", "HEAD", check=False).strip()
    return head or "main"


def branches(repo: Path) -> list[dict[str, str]]:
    out = git(
        repo,
        "for-each-ref",
        "--sort=-committerdate",
        f"--format=%(refname:short){FIELD}%(objectname){FIELD}%(committerdate:iso-strict)",
        "refs/heads",
    )
    found = []
    for line in out.splitlines():
        name, commit, date = line.split(FIELD)
        found.append({"name": name, "commit": commit, "updated_at": date})
    return found


def commits(repo: Path, ref: str | None = None, limit: int = 50) -> list[Commit]:
    if is_empty(repo):
        return []
    fmt = FIELD.join(["%H", "%an", "%aI", "%P", "%B"]) + RECORD
    result = git(
        repo, "log", f"--max-count={max(1, min(limit, 500))}", f"--format={fmt}", _ref(ref), "--", check=False
    )
    found = []
    for record in result.split(RECORD):
        record = record.strip("\n")
        if not record:
            continue
        commit_id, author, date, parents, message = record.split(FIELD, 4)
        found.append(Commit(commit_id, author, date, message.strip(), parents.split()))
    if not found and ref:
        raise NotFound(f"no commits at '{ref}'")
    return found


def tree(repo: Path, ref: str | None = None, path: str = "") -> list[Entry]:
    if is_empty(repo):
        return []
    path = _path(path)
    spec = f"{_ref(ref)}:{path}" if path else f"{_ref(ref)}^{{tree}}"
    out = git(repo, "ls-tree", "--long", spec, check=False)
    if not out and path:
        raise NotFound(f"no directory '{path}' at '{ref or 'HEAD'}'")
    entries = []
    for line in out.splitlines():
        meta, _, name = line.partition("\t")
        _, kind, _, size = meta.split(None, 3)
        entries.append(
            Entry(
                name, f"{path}/{name}" if path else name, kind, int(size) if size.strip().isdigit() else None
            )
        )
    return sorted(entries, key=lambda e: (e.kind != "tree", e.name))


def blob(repo: Path, ref: str | None, path: str) -> bytes:
    path = _path(path)
    if not path:
        raise InvalidInput("name a file", field="path")
    spec = f"{_ref(ref)}:{path}"
    size = git(repo, "cat-file", "-s", spec, check=False).strip()
    if not size.isdigit():
        raise NotFound(f"no file '{path}' at '{ref or 'HEAD'}'")
    if int(size) > MAX_BLOB:
        raise TooLarge(f"'{path}' has {size} bytes; files above {MAX_BLOB} bytes are not shown (clone it)")
    import subprocess

    return subprocess.run(  # noqa: S603
        ["git", "--git-dir", str(repo), "cat-file", "blob", spec],  # noqa: S607
        capture_output=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(repo), "GIT_CONFIG_NOSYSTEM": "1"},
    ).stdout

"""R packages: a CRAN-like repository the admin populates, served to workspaces at ``/cran/``.

Upstream CRAN is never contacted: only source packages an admin uploaded (``R CMD build``
tarballs, ``NAME_VERSION.tar.gz``) are served, from ``<packages.server_dir>/cran`` in
CRAN's layout (``src/contrib/PACKAGES[.gz]`` and the tarballs; replaced versions move to
``src/contrib/Archive/NAME/``), so ``install.packages()`` works against it unchanged. The
index is written here from each tarball's ``DESCRIPTION`` (as ``tools::write_PACKAGES``
does), so the platform needs no R of its own.

The mirror's policy (``packages.policy``, rules of ecosystem ``r``, and the mode) is applied
when the index is served: a package or version the policy refuses stays listed, with a
``Path`` field (CRAN's own, relative to ``src/contrib``) under ``refused/`` whose words
spell the reason. ``install.packages()`` then fails on that download and its warning
shows the address, hence the reason (R has no other channel from a repository to the
person installing); the tarball itself answers 403 and the refusal is recorded.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import os
import re
import tarfile
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from datalibrary.audit import service as audit
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.config import Settings
from datalibrary.errors import InvalidInput, NotFound
from datalibrary.packages import policy, server

REFUSED_DIR = "refused"
TARBALL = re.compile(r"^([A-Za-z][A-Za-z0-9.]*[A-Za-z0-9])_([0-9]+(?:[.-][0-9]+)+)\.tar\.gz$")
FIELDS = (
    "Package", "Version", "Priority", "Depends", "Imports", "LinkingTo", "Suggests", "Enhances",
    "License", "License_is_FOSS", "License_restricts_use", "OS_type", "Archs", "NeedsCompilation",
)  # fmt: skip
MAX_DESCRIPTION = 256 * 1024


def root(settings: Settings) -> Path:
    return server.server_dir(settings) / "cran"


def contrib(settings: Settings) -> Path:
    return root(settings) / "src" / "contrib"


def parse_dcf(text: str) -> dict[str, str]:
    """One Debian-control-file record (R's DESCRIPTION): continuation lines start with space."""
    fields: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if line[0] in " \t" and current:
            fields[current] += "\n" + line.rstrip()
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise ValueError(f"line '{line[:60]}' is neither 'Field: value' nor a continuation")
        current = name.strip()
        fields[current] = value.strip()
    return fields


def read_description(filename: str, content: bytes) -> dict[str, str]:
    """The DESCRIPTION of an ``R CMD build`` tarball, checked against its file name."""
    match = TARBALL.match(filename)
    if match is None:
        raise InvalidInput(
            f"'{filename}' is not an R source package name (NAME_VERSION.tar.gz, as R CMD build writes)",
            field="file",
        )
    name, version = match.groups()
    try:
        with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as archive:
            for member in archive.getmembers():
                parts = Path(member.name).parts
                if member.name.startswith("/") or ".." in parts or parts[:1] != (name,):
                    raise InvalidInput(
                        f"'{filename}': member '{member.name}' is outside '{name}/'", field="file"
                    )
                if member.issym() or member.islnk():
                    target = Path(member.linkname)
                    if target.is_absolute() or ".." in target.parts:
                        raise InvalidInput(f"'{filename}': link '{member.name}' points outside", field="file")
            member = archive.getmember(f"{name}/DESCRIPTION")
            if not member.isfile() or member.size > MAX_DESCRIPTION:
                raise InvalidInput(f"'{filename}': {name}/DESCRIPTION is not a small file", field="file")
            handle = archive.extractfile(member)
            assert handle is not None
            text = handle.read().decode("utf-8", errors="replace")
    except KeyError as exc:
        raise InvalidInput(f"'{filename}' has no {name}/DESCRIPTION", field="file") from exc
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InvalidInput(f"'{filename}' is not a gzip-compressed tar file: {exc}", field="file") from exc
    try:
        description = parse_dcf(text)
    except ValueError as exc:
        raise InvalidInput(f"'{filename}': {name}/DESCRIPTION: {exc}", field="file") from exc
    if (description.get("Package"), description.get("Version")) != (name, version):
        raise InvalidInput(
            f"'{filename}': DESCRIPTION says Package '{description.get('Package')}' Version "
            f"'{description.get('Version')}', the file name says '{name}' '{version}'",
            field="file",
        )
    return description


def _entry(path: Path) -> str:
    description = read_description(path.name, path.read_bytes())
    lines = [f"{field}: {description[field]}" for field in FIELDS if description.get(field)]
    lines.append(f"MD5sum: {hashlib.md5(path.read_bytes()).hexdigest()}")  # noqa: S324 - CRAN's field
    return "\n".join(lines) + "\n"


def _write_index(directory: Path) -> None:
    text = "\n".join(_entry(p) for p in sorted(directory.glob("*.tar.gz")))
    for name, data in (("PACKAGES", text.encode()), ("PACKAGES.gz", gzip.compress(text.encode(), mtime=0))):
        scratch = directory / f".{name}.tmp"
        scratch.write_bytes(data)
        os.replace(scratch, directory / name)


def _locked(directory: Path):  # type: ignore[no-untyped-def]
    directory.mkdir(parents=True, exist_ok=True)
    handle = open(directory / ".lock", "w")  # noqa: SIM115 - closed by the caller's with
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def upload(
    settings: Settings, session: Session, actor: Principal, filename: str, content: bytes
) -> dict[str, str]:
    """Publish an R source package; a previous version of it moves to ``Archive/NAME/``."""
    require(actor, Permission.PACKAGES_MANAGE)
    description = read_description(filename, content)
    name, version = description["Package"], description["Version"]
    directory = contrib(settings)
    with _locked(directory):
        archived = []
        for old in directory.glob(f"{name}_*.tar.gz"):
            previous = TARBALL.match(old.name)
            if previous is not None and previous.group(1) == name and old.name != filename:
                archive = directory / "Archive" / name
                archive.mkdir(parents=True, exist_ok=True)
                os.replace(old, archive / old.name)
                archived.append(old.name)
        scratch = directory / f".{filename}.tmp"
        scratch.write_bytes(content)
        os.replace(scratch, directory / filename)
        _write_index(directory)
    audit.record(
        session,
        actor=actor,
        action="packages.r_upload",
        target=f"rpackage:{name}",
        details={"version": version, "file": filename, "bytes": len(content), "archived": archived},
    )
    return {"name": name, "version": version, "file": filename}


def list_packages(settings: Settings, actor: Principal) -> list[dict[str, Any]]:
    require(actor, Permission.PACKAGES_INSTALL)
    index = contrib(settings) / "PACKAGES"
    if not index.exists():
        return []
    records = [parse_dcf(block) for block in index.read_text().split("\n\n") if block.strip()]
    return [
        {"name": r["Package"], "version": r["Version"], "depends": r.get("Depends", ""),
         "imports": r.get("Imports", ""), "license": r.get("License", "")}
        for r in records
    ]  # fmt: skip


def served_file(settings: Settings, name: str) -> Path:
    """A file of ``src/contrib`` a client may fetch (the index or a current tarball)."""
    if name not in ("PACKAGES", "PACKAGES.gz") and TARBALL.match(name) is None:
        raise NotFound(f"no R package file '{name}'")
    path = contrib(settings) / name
    if not path.is_file():
        raise NotFound(f"no R package file '{name}' (upstream CRAN is not reachable; ask an admin)")
    return path


def refused_words(reason: str) -> str:
    """The reason as one path segment (letters, digits, '.', '-')."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", f"Refused by the DataLibrary package policy: {reason}").strip("-")


def served_index(settings: Settings, session: Session, filename: str) -> bytes:
    """``PACKAGES`` or ``PACKAGES.gz`` as the policy lets workspaces see it: every refused
    package or version points at ``refused/<the reason>/`` (see the module's docstring)."""
    index = contrib(settings) / "PACKAGES"
    text = index.read_text() if index.exists() else ""
    decide = policy.decider(session, "r")
    records = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        fields = parse_dcf(block)
        reason = policy.refusal(decide(fields["Package"]), fields["Package"], fields["Version"])
        records.append(
            block.strip("\n") + (f"\nPath: {REFUSED_DIR}/{refused_words(reason)}" if reason else "")
        )
    body = ("\n\n".join(records) + "\n").encode() if records else b""
    return gzip.compress(body, mtime=0) if filename.endswith(".gz") else body


def tarball_refusal(session: Session, filename: str) -> tuple[str, str, str]:
    """(name, version, why not) of a tarball request ("" = allowed)."""
    match = TARBALL.match(filename)
    if match is None:
        raise NotFound(f"no R package file '{filename}'")
    name, version = match.groups()
    return name, version, policy.refusal(policy.decide(session, name, ecosystem="r"), name, version)

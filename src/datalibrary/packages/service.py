"""What the mirror serves: policy-filtered index pages, files, uploads and the install log.

Index pages come from devpi's ``root/internal`` (internal uploads + the cached upstream);
every link is checked against the policy and rewritten to ``/pypi/files/...`` on the
platform, so a file can only be fetched through the platform (which checks the policy
again and records the install). A refused package gets a page whose single link is
marked yanked with the refusal as its reason (pip prints it) and answers 403 with it.
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import urljoin

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.audit import service as audit
from datalibrary.audit.models import AuditEvent
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.config import Settings
from datalibrary.errors import InvalidInput, Unavailable
from datalibrary.packages import policy, server

ANCHOR = re.compile(r"<a\s+([^>]*?)href=\"([^\"]+)\"([^>]*)>([^<]*)</a>", re.IGNORECASE)
MAX_UPLOAD = 512 * 1024**2  # one uploaded wheel, sdist or R tarball (API, CLI, console)
FILE_PATH = re.compile(r"^root/(pypi|internal)/\+f/[0-9a-f]{3}/[0-9a-f]{13,}/[A-Za-z0-9._+!-]+$")


def name_and_version(filename: str) -> tuple[str, str] | None:
    try:
        if filename.endswith(".whl"):
            name, version, *_ = parse_wheel_filename(filename)
        else:
            name, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, ValueError):
        return None
    return str(name), str(version)


def refused_page(name: str, reason: str) -> str:
    """One candidate whose download answers 403: pip then prints its address, which spells
    out the refusal (index pages have no other channel to the person running pip)."""
    normalized = canonicalize_name(name)
    words = re.sub(r"[^A-Za-z0-9.]+", "-", f"Refused by the DataLibrary package policy: {reason}").strip("-")
    link = f"/pypi/refused/{normalized}/{words}/{normalized.replace('-', '_')}-0-py3-none-any.whl"
    return (
        f"<!DOCTYPE html><html><body><h1>Links for {html.escape(normalized)}</h1>\n"
        f'<a href="{html.escape(link)}">{html.escape(link.rsplit("/", 1)[1])}</a>\n</body></html>\n'
    )


def filter_page(page: str, name: str, decision: policy.Decision, *, internal_only: bool = False) -> str:
    """The devpi page with only allowed versions, every link pointing at the platform."""
    base = f"/{server.INTERNAL}/+simple/{canonicalize_name(name)}/"
    kept = []
    for before, href, after, text in ANCHOR.findall(page):
        url, _, fragment = href.partition("#")
        path = urljoin(base, url).lstrip("/")
        if not FILE_PATH.match(path) or (internal_only and not is_internal(path)):
            continue
        parsed = name_and_version(path.rsplit("/", 1)[1])
        if parsed is None or canonicalize_name(parsed[0]) != canonicalize_name(name):
            continue
        if not decision.version_ok(parsed[1]):
            continue
        target = f"/pypi/files/{path}" + (f"#{fragment}" if fragment else "")
        kept.append(f'<a {before}href="{html.escape(target)}"{after}>{text}</a>')
    title = html.escape(canonicalize_name(name))
    return (
        f"<!DOCTYPE html><html><body><h1>Links for {title}</h1>\n"
        + "<br/>\n".join(kept)
        + "\n</body></html>\n"
    )


def is_internal(path: str) -> bool:
    return path.startswith(f"{server.INTERNAL}/")


def check_file(session: Session, path: str) -> tuple[str, str, policy.Decision]:
    """(name, version, decision) for a file path served under /pypi/files/."""
    if not FILE_PATH.match(path):
        raise InvalidInput("not a mirror file path")
    parsed = name_and_version(path.rsplit("/", 1)[1])
    if parsed is None:
        raise InvalidInput("not a wheel or source distribution")
    name, version = parsed
    decision = policy.decide(session, name, internal=is_internal(path))
    if decision.allowed and not decision.version_ok(version):
        decision = policy.Decision(False, f"version {version} of '{canonicalize_name(name)}' is not allowed")
    return name, version, decision


def workspace_of(actor: Principal) -> str | None:
    scope = actor.token_scope or ""
    return scope.removeprefix("workspace:") if scope.startswith("workspace:") else None


def record_install(
    session: Session,
    actor: Principal,
    name: str,
    version: str,
    filename: str,
    *,
    refused: str | None = None,
    ecosystem: str = "python",
) -> None:
    """One install (a file served) or refusal: user, workspace, package, version."""
    python = ecosystem == "python"
    audit.record(
        session,
        actor=actor,
        action="package.install" if refused is None else "package.refused",
        target=f"package:{canonicalize_name(name)}" if python else f"rpackage:{name}",
        outcome="success" if refused is None else "denied",
        details={
            "ecosystem": ecosystem,
            "package": canonicalize_name(name) if python else name,
            "version": version,
            "file": filename,
            "workspace": workspace_of(actor),
            **({"reason": refused} if refused else {}),
        },
        client="workspace" if workspace_of(actor) else ("pip" if python else "R"),
    )


def install_log(session: Session, actor: Principal, limit: int = 200) -> list[dict[str, Any]]:
    require(actor, Permission.PACKAGES_MANAGE)
    rows = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action.in_(("package.install", "package.refused")))
        .order_by(AuditEvent.id.desc())
        .limit(max(1, min(limit, 5000)))
    )
    return [
        {
            "at": row.at.isoformat(),
            "user": row.actor,
            "action": row.action,
            "ecosystem": row.details.get("ecosystem", "python"),
            **{k: row.details.get(k) for k in ("package", "version", "file", "workspace", "reason")},
        }
        for row in rows
    ]


def uploads_log(session: Session, actor: Principal, limit: int = 200) -> list[dict[str, Any]]:
    """Wheels and sdists put on the internal index, newest first (who, when, which file)."""
    require(actor, Permission.PACKAGES_MANAGE)
    rows = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "packages.upload")
        .order_by(AuditEvent.id.desc())
        .limit(max(1, min(limit, 5000)))
    )
    return [
        {
            "at": row.at.isoformat(),
            "user": row.actor,
            "package": row.target.removeprefix("package:"),
            **{k: row.details.get(k) for k in ("version", "file", "bytes")},
        }
        for row in rows
    ]


def upload(
    settings: Settings, session: Session, actor: Principal, filename: str, content: bytes
) -> dict[str, str]:
    """Put a wheel (or sdist) on the internal index."""
    require(actor, Permission.PACKAGES_MANAGE)
    parsed = name_and_version(filename)
    if parsed is None or "/" in filename:
        raise InvalidInput(
            f"'{filename}' is not a wheel or sdist file name (name-version-...whl)", field="file"
        )
    name, version = parsed
    server.ensure_running(settings)
    headers = server.auth_header(settings)
    with server.client(settings, 300) as http:
        response = http.post(
            f"/{server.INTERNAL}/",
            data={":action": "file_upload", "name": name, "version": version},
            files={"content": (filename, content, "application/octet-stream")},
            headers={**headers, "Accept": "application/json"},
        )
    if response.status_code >= 400:
        raise Unavailable(f"the mirror refused the upload ({response.status_code}): {response.text[:300]}")
    audit.record(
        session,
        actor=actor,
        action="packages.upload",
        target=f"package:{canonicalize_name(name)}",
        details={"version": version, "file": filename, "bytes": len(content)},
    )
    return {"name": canonicalize_name(name), "version": version, "file": filename}

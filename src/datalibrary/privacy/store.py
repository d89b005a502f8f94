"""Policies stored in the database: every version kept with its hash, never overwritten."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.audit.service import record
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.errors import Conflict, NotFound
from datalibrary.privacy.builtin import BUILTIN
from datalibrary.privacy.models import StoredPolicy
from datalibrary.privacy.policy import Policy, parse_policy


def save_policy(session: Session, principal: Principal, yaml_text: str) -> tuple[Policy, bool]:
    """Store a policy version; the same document again is a no-op. Returns (policy, created)."""
    require(principal, Permission.POLICIES_MANAGE)
    policy = parse_policy(yaml_text)
    existing = session.scalar(
        select(StoredPolicy).where(StoredPolicy.name == policy.name, StoredPolicy.version == policy.version)
    )
    if existing is not None:
        if existing.sha256 != policy.sha256:
            raise Conflict(
                f"policy {policy.label} already exists with different content: raise its version to change it"
            )
        return policy, False
    session.add(
        StoredPolicy(
            name=policy.name,
            version=policy.version,
            sha256=policy.sha256,
            document=yaml_text,
            created_by=principal.name,
        )
    )
    record(
        session,
        actor=principal,
        action="policy.create",
        target=f"policy:{policy.label}",
        details={"sha256": policy.sha256},
    )
    session.flush()
    return policy, True


def stored_policy(session: Session, name: str, version: str) -> StoredPolicy:
    """The stored row of one policy version (who stored it and when), as ``save_policy`` left it."""
    found = session.scalar(
        select(StoredPolicy).where(StoredPolicy.name == name, StoredPolicy.version == version)
    )
    if found is None:
        raise NotFound(f"no policy named {name!r} version {version}")
    return found


def load_policy(session: Session, name: str, version: str | None = None) -> Policy:
    """A stored policy by name (latest version unless ``version`` is given)."""
    query = select(StoredPolicy).where(StoredPolicy.name == name)
    if version is not None:
        query = query.where(StoredPolicy.version == version)
    rows = list(session.scalars(query))
    if not rows and name in BUILTIN:
        ensure_builtin_policies(session)
        rows = list(session.scalars(query))
    if not rows:
        raise NotFound(f"no policy named {name!r}" + (f" version {version}" if version else ""))
    row = max(rows, key=lambda r: (_version_key(r.version), r.id))
    return parse_policy(row.document)


def list_policies(session: Session, principal: Principal) -> list[StoredPolicy]:
    require(principal, Permission.CATALOG_READ)
    return list(session.scalars(select(StoredPolicy).order_by(StoredPolicy.name, StoredPolicy.id)))


def _version_key(version: str) -> tuple:
    parts = version.split(".")
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def ensure_builtin_policies(session: Session) -> list[str]:
    """Store the built-in policies (``sdtm``, ``ehr``) that are not stored yet; their names."""
    added = []
    for name, text in BUILTIN.items():
        policy = parse_policy(text)
        exists = session.scalar(
            select(StoredPolicy.id).where(StoredPolicy.name == name, StoredPolicy.version == policy.version)
        )
        if exists is None:
            session.add(
                StoredPolicy(
                    name=name,
                    version=policy.version,
                    sha256=policy.sha256,
                    document=text,
                    created_by="builtin",
                )
            )
            added.append(name)
    session.flush()
    return added

"""The mirror's policy: which packages and versions workspaces may install.

``open``: everything the upstream has, except what a deny rule names. ``allowlist``: only
names with an allow rule (and, if the rule has a version range, only those versions).
Deny rules win over allow rules. Packages on the internal index (uploaded by admins) are
allowed in both modes unless denied. Names are compared PEP 503-normalized.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.audit import service as audit
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.db.base import utcnow
from datalibrary.errors import Conflict, InvalidInput, NotFound
from datalibrary.packages.models import PackagePolicy, PackageRule

Mode = Literal["open", "allowlist"]
MODES = ("open", "allowlist")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # why not, for the person installing
    allow: SpecifierSet | None = None  # versions an allow rule limits to
    deny: SpecifierSet | None = None  # versions a deny rule refuses ("" = all)

    def version_ok(self, version: str) -> bool:
        try:
            parsed = Version(version)
        except InvalidVersion:
            return False
        if self.deny is not None and (not str(self.deny) or parsed in self.deny):
            return False
        return self.allow is None or not str(self.allow) or parsed in self.allow


def _policy_row(session: Session) -> PackagePolicy:
    row = session.get(PackagePolicy, 1)
    if row is None:
        row = PackagePolicy(id=1, mode="open", updated_by="default")
        session.add(row)
        session.flush()
    return row


def mode(session: Session) -> str:
    row = session.get(PackagePolicy, 1)
    return row.mode if row else "open"


def decide(session: Session, name: str, *, internal: bool = False) -> Decision:
    """May ``name`` be installed at all, and which versions."""
    normalized = canonicalize_name(name)
    rules = {r.kind: r for r in session.scalars(select(PackageRule).where(PackageRule.name == normalized))}
    deny = rules.get("deny")
    allow = rules.get("allow")
    if deny is not None and not deny.specifier:
        note = f" ({deny.note})" if deny.note else ""
        return Decision(False, f"'{normalized}' is on the mirror's deny list{note}; ask an admin")
    if allow is None and mode(session) == "allowlist" and not internal:
        return Decision(
            False,
            f"'{normalized}' is not on the mirror's allow list (allow-list mode); ask an admin to allow it",
        )
    return Decision(
        True,
        "",
        allow=SpecifierSet(allow.specifier) if allow is not None else None,
        deny=SpecifierSet(deny.specifier) if deny is not None else None,
    )


def set_mode(session: Session, actor: Principal, new_mode: str) -> PackagePolicy:
    require(actor, Permission.PACKAGES_MANAGE)
    if new_mode not in MODES:
        raise InvalidInput(f"mode must be one of {list(MODES)}", field="mode")
    row = _policy_row(session)
    old = row.mode
    row.mode, row.updated_by, row.updated_at = new_mode, actor.name, utcnow()
    audit.record(
        session,
        actor=actor.name,
        action="packages.mode",
        target="packages:policy",
        details={"from": old, "to": new_mode},
    )
    return row


def list_rules(session: Session, actor: Principal) -> list[PackageRule]:
    require(actor, Permission.PACKAGES_INSTALL)
    return list(session.scalars(select(PackageRule).order_by(PackageRule.kind, PackageRule.name)))


def add_rule(
    session: Session, actor: Principal, kind: str, name: str, specifier: str = "", note: str = ""
) -> PackageRule:
    require(actor, Permission.PACKAGES_MANAGE)
    if kind not in ("allow", "deny"):
        raise InvalidInput("a rule is 'allow' or 'deny'", field="kind")
    normalized = canonicalize_name(name.strip())
    if not normalized or not all(c.isalnum() or c in "-._" for c in normalized):
        raise InvalidInput(f"'{name}' is not a package name", field="name")
    try:
        SpecifierSet(specifier.strip())
    except InvalidSpecifier as exc:
        raise InvalidInput(
            f"'{specifier}' is not a version range (e.g. '>=2,<3')", field="specifier"
        ) from exc
    existing = session.scalar(
        select(PackageRule).where(PackageRule.kind == kind, PackageRule.name == normalized)
    )
    if existing is not None:
        raise Conflict(f"there already is a {kind} rule for '{normalized}'; delete it first")
    rule = PackageRule(
        kind=kind,
        name=normalized,
        specifier=specifier.strip(),
        note=note.strip()[:500],
        created_by=actor.name,
    )
    session.add(rule)
    session.flush()
    audit.record(
        session,
        actor=actor.name,
        action=f"packages.{kind}",
        target=f"package:{normalized}",
        details={"specifier": rule.specifier, "note": rule.note},
    )
    return rule


def delete_rule(session: Session, actor: Principal, rule_id: int) -> None:
    require(actor, Permission.PACKAGES_MANAGE)
    rule = session.get(PackageRule, rule_id)
    if rule is None:
        raise NotFound(f"no package rule with id {rule_id}")
    session.delete(rule)
    audit.record(
        session,
        actor=actor.name,
        action="packages.rule_delete",
        target=f"package:{rule.name}",
        details={"kind": rule.kind, "specifier": rule.specifier},
    )

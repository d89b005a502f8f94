"""The mirror's policy: which packages and versions workspaces may install.

``open``: everything the upstream has, except what a deny rule names. ``allowlist``: only
names with an allow rule (and, if the rule has a version range, only those versions).
Deny rules win over allow rules. Packages on the internal index (uploaded by admins) are
allowed in both modes unless denied. Names are compared PEP 503-normalized.

Rules belong to an ecosystem: ``python`` (pip and uv, ``/pypi/``) or ``r``
(``install.packages()``, ``/cran/``); the mode is one switch for both. R names compare
case-insensitively (CRAN refuses names that differ only in case) and R versions
(``1.2-3``) are read as ``1.2.3`` against a rule's range. The R repository has no
"internal" exception: admins often fill it in bulk, so in allow-list mode an R package
needs its allow rule.
"""

from __future__ import annotations

from collections.abc import Callable
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
Ecosystem = Literal["python", "r"]
ECOSYSTEMS = ("python", "r")


def normalize(name: str, ecosystem: str = "python") -> str:
    """The name rules are kept under: PEP 503 for Python, lower case for R."""
    return name.strip().lower() if ecosystem == "r" else canonicalize_name(name.strip())


def parse_version(version: str, ecosystem: str = "python") -> Version:
    """A version to compare with a range; R's ``1.2-3`` is ``1.2.3`` (InvalidVersion if neither)."""
    return Version(version.replace("-", ".") if ecosystem == "r" else version)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # why not, for the person installing
    allow: SpecifierSet | None = None  # versions an allow rule limits to
    deny: SpecifierSet | None = None  # versions a deny rule refuses ("" = all)
    ecosystem: str = "python"

    def version_ok(self, version: str) -> bool:
        try:
            parsed = parse_version(version, self.ecosystem)
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


def decide(session: Session, name: str, *, internal: bool = False, ecosystem: str = "python") -> Decision:
    """May ``name`` be installed at all, and which versions."""
    normalized = normalize(name, ecosystem)
    found = session.scalars(
        select(PackageRule).where(PackageRule.ecosystem == ecosystem, PackageRule.name == normalized)
    )
    return _decision(normalized, {r.kind: r for r in found}, mode(session), internal, ecosystem)


def _decision(
    normalized: str, rules: dict[str, PackageRule], current_mode: str, internal: bool, ecosystem: str
) -> Decision:
    deny = rules.get("deny")
    allow = rules.get("allow")
    if deny is not None and not deny.specifier:
        note = f" ({deny.note})" if deny.note else ""
        return Decision(
            False, f"'{normalized}' is on the mirror's deny list{note}; ask an admin", ecosystem=ecosystem
        )
    if allow is None and current_mode == "allowlist" and not internal:
        return Decision(
            False,
            f"'{normalized}' is not on the mirror's allow list (allow-list mode); ask an admin to allow it",
            ecosystem=ecosystem,
        )
    return Decision(
        True,
        "",
        allow=SpecifierSet(allow.specifier) if allow is not None else None,
        deny=SpecifierSet(deny.specifier) if deny is not None else None,
        ecosystem=ecosystem,
    )


def decider(session: Session, ecosystem: str) -> Callable[[str], Decision]:
    """``decide`` for many names with two queries (the R index lists every package)."""
    current_mode = mode(session)
    rules: dict[str, dict[str, PackageRule]] = {}
    for rule in session.scalars(select(PackageRule).where(PackageRule.ecosystem == ecosystem)):
        rules.setdefault(rule.name, {})[rule.kind] = rule

    def decide_name(name: str) -> Decision:
        normalized = normalize(name, ecosystem)
        return _decision(normalized, rules.get(normalized, {}), current_mode, False, ecosystem)

    return decide_name


def refusal(decision: Decision, name: str, version: str) -> str:
    """Why this version may not be installed ("" if it may)."""
    if not decision.allowed:
        return decision.reason
    if not decision.version_ok(version):
        return f"version {version} of '{normalize(name, decision.ecosystem)}' is not allowed; ask an admin"
    return ""


def set_mode(session: Session, actor: Principal, new_mode: str) -> PackagePolicy:
    require(actor, Permission.PACKAGES_MANAGE)
    if new_mode not in MODES:
        raise InvalidInput(f"mode must be one of {list(MODES)}", field="mode")
    row = _policy_row(session)
    old = row.mode
    row.mode, row.updated_by, row.updated_at = new_mode, actor.name, utcnow()
    audit.record(
        session,
        actor=actor,
        action="packages.mode",
        target="packages:policy",
        details={"from": old, "to": new_mode},
    )
    return row


def list_rules(session: Session, actor: Principal) -> list[PackageRule]:
    require(actor, Permission.PACKAGES_INSTALL)
    return list(
        session.scalars(
            select(PackageRule).order_by(PackageRule.ecosystem, PackageRule.kind, PackageRule.name)
        )
    )


def add_rule(
    session: Session,
    actor: Principal,
    kind: str,
    name: str,
    specifier: str = "",
    note: str = "",
    ecosystem: str = "python",
) -> PackageRule:
    require(actor, Permission.PACKAGES_MANAGE)
    if kind not in ("allow", "deny"):
        raise InvalidInput("a rule is 'allow' or 'deny'", field="kind")
    if ecosystem not in ECOSYSTEMS:
        raise InvalidInput(f"ecosystem must be one of {list(ECOSYSTEMS)}", field="ecosystem")
    normalized = normalize(name, ecosystem)
    if not normalized or not all(c.isalnum() or c in "-._" for c in normalized):
        raise InvalidInput(f"'{name}' is not a package name", field="name")
    try:
        SpecifierSet(specifier.strip())
    except InvalidSpecifier as exc:
        raise InvalidInput(
            f"'{specifier}' is not a version range (e.g. '>=2,<3')", field="specifier"
        ) from exc
    existing = session.scalar(
        select(PackageRule).where(
            PackageRule.ecosystem == ecosystem, PackageRule.kind == kind, PackageRule.name == normalized
        )
    )
    if existing is not None:
        raise Conflict(
            f"there already is a {kind} rule for {ecosystem} package '{normalized}'; delete it first"
        )
    rule = PackageRule(
        ecosystem=ecosystem,
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
        actor=actor,
        action=f"packages.{kind}",
        target=f"package:{normalized}" if ecosystem == "python" else f"rpackage:{normalized}",
        details={"ecosystem": ecosystem, "specifier": rule.specifier, "note": rule.note},
    )
    return rule


def delete_rule(session: Session, actor: Principal, rule_id: int) -> PackageRule:
    require(actor, Permission.PACKAGES_MANAGE)
    rule = session.get(PackageRule, rule_id)
    if rule is None:
        raise NotFound(f"no package rule with id {rule_id}")
    session.delete(rule)
    audit.record(
        session,
        actor=actor,
        action="packages.rule_delete",
        target=f"package:{rule.name}" if rule.ecosystem == "python" else f"rpackage:{rule.name}",
        details={"ecosystem": rule.ecosystem, "kind": rule.kind, "specifier": rule.specifier},
    )
    return rule

"""Steward overrides of the ``shared`` tier's risk threshold: recorded, audited, per table."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.audit.service import record
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.errors import InvalidInput
from datalibrary.lake.catalog import parse_table_name
from datalibrary.privacy.models import RiskOverride


def grant_override(session: Session, principal: Principal, table: str, reason: str) -> RiskOverride:
    """Allow ``table`` to be stored although its risk is above the shared tier's threshold."""
    require(principal, Permission.POLICIES_MANAGE)
    name = parse_table_name(table)
    reason = reason.strip()
    if len(reason) < 10:
        raise InvalidInput("say why the risk is acceptable (at least 10 characters): it is audited")
    override = RiskOverride(
        namespace=name.namespace, table_name=name.name, reason=reason[:2000], granted_by=principal.name
    )
    session.add(override)
    session.flush()
    record(
        session,
        actor=principal,
        action="privacy.risk-override",
        target=f"table:{name}",
        details={"override": override.id},
    )
    return override


def override_for(session: Session, namespace: str, table: str) -> RiskOverride | None:
    return session.scalars(
        select(RiskOverride)
        .where(RiskOverride.namespace == namespace, RiskOverride.table_name == table)
        .order_by(RiskOverride.id.desc())
        .limit(1)
    ).first()

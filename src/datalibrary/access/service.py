"""Grants and access requests, and the one function the query service asks:
``effective_access`` — what may this caller see of this table, right now?

No role bypasses grants: admins and stewards read data through grants like everyone
else (they can give themselves one, and that is audited). Several grants on one table
combine by union: visible columns are the union, a column stays masked only if every grant
that shows it masks it, and rows pass if any grant's filter passes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from datalibrary.access.models import AccessRequest, Grant
from datalibrary.access.rowfilter import validate_mask, validate_row_filter
from datalibrary.audit import service as audit
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.config import Settings
from datalibrary.db.base import utcnow
from datalibrary.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from datalibrary.lake.datasets import CatalogView, Visibility

PRINCIPAL = re.compile(r"^(user|group):[A-Za-z0-9._-]{1,64}$")
# Looks up a table's columns (lower-case) or raises NotFound; supplied by the lake.
ColumnsOf = Callable[[str, str], set[str]]


@dataclass(frozen=True)
class Access:
    """What one caller may see of one table."""

    columns: frozenset[str] | None  # None: every column
    masks: dict[str, str] = field(default_factory=dict)
    row_filter: str | None = None
    grant_ids: tuple[int, ...] = ()


def principals_of(principal: Principal) -> list[str]:
    groups = getattr(principal, "groups", frozenset())
    return [f"user:{principal.name}", *(f"group:{g}" for g in sorted(groups))]


def _active(now: datetime):  # type: ignore[no-untyped-def]
    return (Grant.revoked_at.is_(None), or_(Grant.expires_at.is_(None), Grant.expires_at > now))


def effective_access(session: Session, principal: Principal, namespace: str, table: str) -> Access | None:
    """The caller's combined access to ``namespace.table``; None means no access at all."""
    require(principal, Permission.QUERY_RUN)
    return _combined(session, principal, namespace, table)


def catalog_visibility(session: Session, principal: Principal) -> Visibility:
    """What the catalog may show the caller of each table: its grants' columns and masks."""
    require(principal, Permission.CATALOG_READ)

    def visible(namespace: str, table: str) -> CatalogView | None:
        access = _combined(session, principal, namespace, table)
        if access is None:
            return None
        return CatalogView(columns=access.columns, masked=frozenset(access.masks))

    return visible


def _combined(session: Session, principal: Principal, namespace: str, table: str) -> Access | None:
    grants = session.scalars(
        select(Grant).where(
            Grant.principal.in_(principals_of(principal)),
            Grant.namespace == namespace,
            or_(Grant.table_name.is_(None), Grant.table_name == table),
            *_active(utcnow()),
        )
    ).all()
    if not grants:
        return None
    columns: set[str] | None = set()
    for grant in grants:
        if grant.columns is None:
            columns = None
            break
        columns |= {c.lower() for c in grant.columns}

    def shows_unmasked(grant: Grant, column: str) -> bool:
        visible = grant.columns is None or column in {c.lower() for c in grant.columns}
        return visible and column not in {k.lower() for k in grant.masks or {}}

    masks: dict[str, str] = {}
    for grant in grants:
        for column, spec in (grant.masks or {}).items():
            masks.setdefault(column.lower(), spec)
    masks = {c: spec for c, spec in masks.items() if not any(shows_unmasked(g, c) for g in grants)}
    filters = [g.row_filter for g in grants]
    row_filter = None if any(f is None for f in filters) else " OR ".join(f"({f})" for f in filters)
    return Access(
        columns=frozenset(columns) if columns is not None else None,
        masks=masks,
        row_filter=row_filter,
        grant_ids=tuple(g.id for g in grants),
    )


def add_grant(
    session: Session,
    actor: Principal,
    *,
    principal: str,
    namespace: str,
    table: str | None = None,
    columns: list[str] | None = None,
    masks: dict[str, str] | None = None,
    row_filter: str | None = None,
    expires_at: datetime | None = None,
    columns_of: ColumnsOf | None = None,
    request_id: int | None = None,
) -> Grant:
    require(actor, Permission.GRANTS_MANAGE)
    if not PRINCIPAL.match(principal):
        raise InvalidInput("principal must be user:NAME or group:NAME", field="principal")
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidInput("the expiry date is in the past", field="expires")
    known = columns_of(namespace, table) if (columns_of and table) else None
    wanted = [c.lower() for c in columns] if columns else None
    masks = {k.lower(): validate_mask(k, v) for k, v in (masks or {}).items()}
    for column in [*(wanted or []), *masks]:
        if known is not None and column not in known:
            raise InvalidInput(f"table {namespace}.{table} has no column '{column}'", field="columns")
    if wanted is not None and set(masks) - set(wanted):
        raise InvalidInput("a masked column must also be one of the granted columns", field="masks")
    normalized_filter = validate_row_filter(row_filter, known) if row_filter else None
    grant = Grant(
        principal=principal,
        namespace=namespace,
        table_name=table,
        columns=wanted,
        masks=masks,
        row_filter=normalized_filter,
        expires_at=expires_at,
        created_by=actor.name,
        request_id=request_id,
    )
    session.add(grant)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="grant.add",
        target=f"table:{namespace}.{table or '*'}",
        details={
            "grant_id": grant.id,
            "principal": principal,
            "columns": wanted,
            "masks": sorted(masks),
            "row_filter": normalized_filter,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return grant


def revoke_grant(session: Session, actor: Principal, grant_id: int) -> Grant:
    require(actor, Permission.GRANTS_MANAGE)
    grant = session.get(Grant, grant_id)
    if grant is None:
        raise NotFound(f"no grant with id {grant_id}")
    if grant.revoked_at is None:
        grant.revoked_at, grant.revoked_by = utcnow(), actor.name
        audit.record(
            session,
            actor=actor,
            action="grant.revoke",
            target=f"table:{grant.namespace}.{grant.table_name or '*'}",
            details={"grant_id": grant.id, "principal": grant.principal},
        )
    return grant


def list_grants(
    session: Session,
    actor: Principal,
    *,
    principal: str | None = None,
    namespace: str | None = None,
    table: str | None = None,
    include_inactive: bool = False,
) -> list[Grant]:
    """Stewards see every grant; anyone else sees the grants that apply to them."""
    query = select(Grant).order_by(Grant.id)
    if not actor.can(Permission.GRANTS_MANAGE):
        require(actor, Permission.CATALOG_READ)
        query = query.where(Grant.principal.in_(principals_of(actor)))
    if principal:
        query = query.where(Grant.principal == principal)
    if namespace:
        query = query.where(Grant.namespace == namespace)
    if table:
        query = query.where(or_(Grant.table_name.is_(None), Grant.table_name == table))
    if not include_inactive:
        query = query.where(*_active(utcnow()))
    return list(session.scalars(query))


# --- access requests -------------------------------------------------------------------


def request_access(
    session: Session,
    actor: Principal,
    *,
    namespace: str,
    table: str | None,
    justification: str,
    project: str | None = None,
    columns_of: ColumnsOf | None = None,
) -> AccessRequest:
    require(actor, Permission.ACCESS_REQUEST)
    if columns_of is not None and table is not None:
        columns_of(namespace, table)  # NotFound for a dataset that does not exist
    if len(justification.strip()) < 10:
        raise InvalidInput("say why you need the data (at least 10 characters)", field="justification")
    projects = getattr(actor, "projects", None)
    if project and projects is not None and project not in projects:
        raise PermissionDenied(f"you are not a member of project '{project}'", field="project")
    duplicate = session.scalar(
        select(AccessRequest.id).where(
            AccessRequest.requester == actor.name,
            AccessRequest.namespace == namespace,
            AccessRequest.table_name.is_(None) if table is None else AccessRequest.table_name == table,
            AccessRequest.state == "pending",
        )
    )
    if duplicate is not None:
        raise Conflict(f"you already have a pending request (#{duplicate}) for this dataset")
    request = AccessRequest(
        requester=actor.name,
        namespace=namespace,
        table_name=table,
        justification=justification.strip(),
        project=project,
    )
    session.add(request)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="access.request",
        target=f"table:{namespace}.{table or '*'}",
        details={"request_id": request.id, "project": project},
    )
    return request


def decide_request(
    session: Session,
    actor: Principal,
    request_id: int,
    *,
    approve: bool,
    note: str | None = None,
    columns: list[str] | None = None,
    masks: dict[str, str] | None = None,
    row_filter: str | None = None,
    expires_at: datetime | None = None,
    columns_of: ColumnsOf | None = None,
) -> AccessRequest:
    """Approve (creating a grant with the given restrictions) or deny a pending request."""
    require(actor, Permission.ACCESS_REVIEW)
    request = session.get(AccessRequest, request_id)
    if request is None:
        raise NotFound(f"no access request with id {request_id}")
    if request.state != "pending":
        raise Conflict(f"request #{request_id} was already {request.state}")
    if request.requester == actor.name:
        raise PermissionDenied("you cannot decide your own access request")
    if approve:
        add_grant(
            session,
            actor,
            principal=f"user:{request.requester}",
            namespace=request.namespace,
            table=request.table_name,
            columns=columns,
            masks=masks,
            row_filter=row_filter,
            expires_at=expires_at,
            columns_of=columns_of,
            request_id=request.id,
        )
    request.state = "approved" if approve else "denied"
    request.reviewer, request.decided_at, request.decision_note = actor.name, utcnow(), note
    audit.record(
        session,
        actor=actor,
        action="access.approve" if approve else "access.deny",
        target=f"table:{request.namespace}.{request.table_name or '*'}",
        details={"request_id": request.id, "requester": request.requester},
    )
    return request


def list_requests(
    session: Session, actor: Principal, *, state: str | None = None, mine: bool = False
) -> list[AccessRequest]:
    query = select(AccessRequest).order_by(AccessRequest.id.desc())
    if mine or not actor.can(Permission.ACCESS_REVIEW):
        require(actor, Permission.CATALOG_READ)
        query = query.where(AccessRequest.requester == actor.name)
    if state:
        query = query.where(AccessRequest.state == state)
    return list(session.scalars(query))


def lake_columns(settings: Settings) -> ColumnsOf:
    """Column lookup in the lake catalog, to validate grants against the table."""
    from datalibrary.lake.catalog import TableName, open_lake
    from datalibrary.lake.tables import file_schema

    def columns_of(namespace: str, table: str) -> set[str]:
        iceberg = open_lake(settings).load(TableName(namespace, table))
        return {name.lower() for name in file_schema(iceberg).names}

    return columns_of

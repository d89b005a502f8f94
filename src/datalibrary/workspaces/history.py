"""What a person sees before and after a workspace's life: why an instance type cannot be
launched now, and terminated workspaces with their run time and what they cost."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.config import Settings
from datalibrary.costs import checks as costs_checks
from datalibrary.costs import engine, pricebook
from datalibrary.db.base import utcnow
from datalibrary.errors import BudgetExceeded
from datalibrary.workspaces import service
from datalibrary.workspaces.models import Workspace, WorkspaceUsage
from datalibrary.workspaces.provisioners import provisioner_class, resolve_name

MAX_HISTORY = 1000


def unavailable_types(session: Session, principal: Principal, settings: Settings) -> dict[str, str | None]:
    """Per instance type, why ``principal`` cannot launch it now (None: it can).

    The same checks as a launch (``service.request_create``), asked in advance: the roles'
    products, what the host's provisioner provides (GPUs), the per-user quota, the budgets."""
    require(principal, Permission.WORKSPACES_OWN)
    catalog = service.catalog_of(settings)
    backend = resolve_name(settings.workspaces.provisioner)
    capabilities = provisioner_class(backend).capabilities
    offered = {name for product in catalog.visible_to(principal) for name in product.instance_types}
    account_reason: str | None = None
    if principal.user_id is not None:
        count = session.scalar(
            select(func.count())
            .select_from(Workspace)
            .where(Workspace.owner_id == principal.user_id, Workspace.state != "terminated")
        )
        if (count or 0) >= settings.workspaces.max_per_user:
            account_reason = (
                f"over your quota: you have {count} workspaces and may have "
                f"{settings.workspaces.max_per_user}; terminate one first"
            )
    if account_reason is None:
        try:
            costs_checks.check_launch(session, settings, principal.name, None)
        except BudgetExceeded as exc:
            account_reason = "over budget: " + exc.detail.removeprefix("workspace launch refused: ")
    reasons: dict[str, str | None] = {}
    for itype in catalog.instance_types:
        if itype.name not in offered:
            reasons[itype.name] = "not allowed for your roles: no product you may launch runs on it"
        elif itype.gpu and capabilities.missing(["gpu"]):
            reasons[itype.name] = f"GPU not available on this host (the '{backend}' provisioner has none)"
        else:
            reasons[itype.name] = account_reason
    return reasons


@dataclass(frozen=True)
class Ended:
    workspace: Workspace
    owner: str
    terminated_at: datetime
    running_seconds: int
    cost: Decimal
    currency: str


def history(
    session: Session, principal: Principal, settings: Settings, *, everyone: bool = False, limit: int = 100
) -> list[Ended]:
    """Terminated workspaces, most recently terminated first, with their running time and cost
    (compute while running plus home storage while stopped, from the same engine as reports)."""
    rows = [
        w
        for w in service.list_workspaces(session, principal, everyone=everyone, include_terminated=True)
        if w.state == "terminated"
    ]
    rows.sort(key=lambda w: (w.state_changed_at, w.id), reverse=True)
    rows = rows[: max(1, min(limit, MAX_HISTORY))]
    if not rows:
        return []
    owners = service.owner_names(session, rows)
    ids = [w.id for w in rows]
    running: dict[int, int] = {}
    for usage in session.scalars(
        select(WorkspaceUsage).where(WorkspaceUsage.workspace_id.in_(ids), WorkspaceUsage.state == "running")
    ):
        if usage.ended_at is not None:
            seconds = int((usage.ended_at - usage.started_at).total_seconds())
            running[usage.workspace_id] = running.get(usage.workspace_id, 0) + max(0, seconds)
    book = pricebook.load(session, settings)
    now = utcnow()
    scope = engine.Scope(
        start=min(w.created_at for w in rows),
        end=max(w.state_changed_at for w in rows),
        now=now,
        users=frozenset(owners.values()),
    )
    costs: dict[str, Decimal] = {}
    for line in engine.workspace_lines(session, book, scope):
        key = line.resource.rsplit(":", 1)[-1]
        costs[key] = costs.get(key, Decimal(0)) + line.amount
    return [
        Ended(
            workspace=w,
            owner=owners.get(w.owner_id, "?"),
            terminated_at=w.state_changed_at,
            running_seconds=running.get(w.id, 0),
            cost=engine.cents(costs.get(str(w.id), Decimal(0))),
            currency=book.currency,
        )
        for w in rows
    ]

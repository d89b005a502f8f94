"""The budget enforcer: alerts when a budget is nearly or fully spent, and after
``costs.enforce_after_minutes`` of grace a stop of the running workspaces it pays for.

Apart from ``budgets`` (reading a budget's state) because it acts on workspaces, and the
workspaces' launch check (``costs.checks``) reads budgets: the reading side imports nothing of
``workspaces``."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.audit import service as audit
from datalibrary.auth.models import User
from datalibrary.auth.permissions import Principal
from datalibrary.config import Settings, reveal
from datalibrary.costs import notify
from datalibrary.costs.budgets import Status, find_alert, month_of, status
from datalibrary.costs.engine import CENT
from datalibrary.costs.models import Budget, BudgetAlert
from datalibrary.db import Database
from datalibrary.db.base import utcnow
from datalibrary.workspaces import service as workspaces
from datalibrary.workspaces.models import Workspace

SYSTEM = Principal.system("system:costs")
STOP_STATES = {"running", "starting", "resuming", "pausing", "paused"}


def _raise_alert(
    session: Session, settings: Settings, budget: Budget, current: Status, level: int, now: datetime
) -> None:  # noqa: E501
    enforce_after = now + timedelta(minutes=settings.costs.enforce_after_minutes) if level == 100 else None
    alert = BudgetAlert(
        scope=budget.scope, name=budget.name, month=current.month, level=level,
        spent_cents=int((current.spent / CENT).to_integral_value()), budget_cents=budget.amount_cents,
        raised_at=now, enforce_after=enforce_after,
    )  # fmt: skip
    session.add(alert)
    payload = {
        "event": "budget.exceeded" if level == 100 else "budget.warning",
        **current.as_json(),
        "enforce_after": enforce_after.isoformat() if enforce_after else None,
        "message": current.message(),
    }
    webhook = notify.post(reveal(settings.costs.webhook_url), payload)
    audit.record(
        session,
        actor=SYSTEM,
        action="costs.budget_exceeded" if level == 100 else "costs.budget_warning",
        target=f"budget:{budget.scope}:{budget.name}",
        details={"month": current.month, "percent": str(current.percent), "spent": payload["spent"],
                 "budget": payload["budget"], "webhook": webhook,
                 "enforce_after": payload["enforce_after"]},
    )  # fmt: skip


def _workspaces_to_stop(session: Session, budget: Budget) -> list[Workspace]:
    query = select(Workspace).where(Workspace.state.in_(STOP_STATES))
    if budget.scope == "user":
        owner = session.scalar(select(User.id).where(User.name == budget.name))
        if owner is None:
            return []
        query = query.where(Workspace.owner_id == owner)
    else:
        query = query.where(Workspace.project == budget.name)
    return list(session.scalars(query.order_by(Workspace.id)))


def check_all(session: Session, settings: Settings, now: datetime | None = None) -> list[int]:
    """One pass: raise alerts, and request a stop for workspaces of budgets past their grace.

    Returns the ids of workspaces moved to ``stopping`` (the caller executes the stops)."""
    now = now or utcnow()
    month = month_of(now)
    to_stop: list[int] = []
    for budget in list(session.scalars(select(Budget).order_by(Budget.id))):
        current = status(session, settings, budget, now)
        if current.percent >= settings.costs.warn_percent and find_alert(session, budget, month, 80) is None:
            _raise_alert(session, settings, budget, current, 80, now)
        alert = find_alert(session, budget, month, 100)
        if current.state == "exceeded" and alert is None:
            _raise_alert(session, settings, budget, current, 100, now)
            alert = find_alert(session, budget, month, 100)
        if alert is None or alert.cleared_at or current.state != "exceeded":
            continue
        if alert.enforce_after and now < alert.enforce_after:
            continue
        stopped = []
        for workspace in _workspaces_to_stop(session, budget):
            if workspace.state == "stopping":
                continue
            workspaces.request(
                session,
                SYSTEM,
                workspace.id,
                "stop",
                reason=f"budget of {budget.scope} '{budget.name}' spent",
            )  # noqa: E501
            stopped.append(workspace.id)
        if stopped or alert.enforced_at is None:
            alert.enforced_at = alert.enforced_at or now
            audit.record(
                session,
                actor=SYSTEM,
                action="costs.budget_enforced",
                target=f"budget:{budget.scope}:{budget.name}",
                details={"month": month, "stopped_workspaces": stopped},
            )
        to_stop.extend(stopped)
    return to_stop


async def enforce(db: Database, settings: Settings) -> list[int]:
    """The periodic enforcer: check every budget, then stop what must stop (homes are kept)."""

    def decide() -> list[int]:
        with db.session() as session:
            return check_all(session, settings)

    ids = await asyncio.to_thread(decide)
    for workspace_id in ids:
        await workspaces.execute(db, settings, workspace_id)
    return ids

"""Monthly budgets per user and per project, their status, and what they do when spent.

At ``costs.warn_percent`` (80 %) the owner and the stewards are warned: a console notice (an
alert row), an audit event and the optional webhook. At 100 %: launches and large queries are
refused (``checks``), and after ``costs.enforce_after_minutes`` the enforcer (``enforcer``) stops
the running workspaces of that user or project (homes are kept). Raising a budget above the spend clears
its alerts. Every change and every action is audited.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.audit import service as audit
from datalibrary.auth import service as auth_service
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.auth.projects import get_project
from datalibrary.config import Settings
from datalibrary.costs import pricebook
from datalibrary.costs.engine import CENT, cents
from datalibrary.costs.models import Budget, BudgetAlert
from datalibrary.costs.service import spend
from datalibrary.db.base import utcnow
from datalibrary.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)
SCOPES = ("user", "project")


@dataclass(frozen=True)
class Status:
    scope: str
    name: str
    month: str
    budget: Decimal
    spent: Decimal  # exact
    currency: str
    warn_percent: int
    enforce_after: datetime | None = None
    enforced_at: datetime | None = None

    @property
    def percent(self) -> Decimal:
        if self.budget <= 0:
            return Decimal(100) if self.spent > 0 else Decimal(0)
        return (self.spent * 100 / self.budget).quantize(Decimal("0.1"))

    @property
    def state(self) -> str:
        if self.spent >= self.budget:
            return "exceeded"
        return "warning" if self.percent >= self.warn_percent else "ok"

    def as_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "name": self.name,
            "month": self.month,
            "budget": str(cents(self.budget)),
            "spent": str(cents(self.spent)),
            "remaining": str(cents(max(self.budget - self.spent, Decimal(0)))),
            "percent": str(self.percent),
            "state": self.state,
            "currency": self.currency,
            "enforce_after": self.enforce_after.isoformat() if self.enforce_after else None,
            "enforced_at": self.enforced_at.isoformat() if self.enforced_at else None,
        }

    def message(self) -> str:
        what = f"the monthly budget of {self.scope} '{self.name}'"
        amounts = f"{cents(self.spent)} of {cents(self.budget)} {self.currency}"
        if self.state == "exceeded":
            return (
                f"{what} is spent ({amounts}); new workspaces and large queries are refused and running "
                "workspaces are stopped; ask an administrator to raise the budget"
            )
        return f"{what} is {self.percent}% used ({amounts})"


def month_of(now: datetime) -> str:
    return now.strftime("%Y-%m")


def status(session: Session, settings: Settings, budget: Budget, now: datetime | None = None) -> Status:
    now = now or utcnow()
    spent = spend(
        session, settings, now=now,
        user=budget.name if budget.scope == "user" else None,
        project=budget.name if budget.scope == "project" else None,
    )  # fmt: skip
    alert = find_alert(session, budget, month_of(now), 100)
    return Status(
        scope=budget.scope,
        name=budget.name,
        month=month_of(now),
        budget=Decimal(budget.amount_cents) * CENT,
        spent=spent,
        currency=pricebook.load(session, settings).currency,
        warn_percent=settings.costs.warn_percent,
        enforce_after=alert.enforce_after if alert and not alert.cleared_at else None,
        enforced_at=alert.enforced_at if alert and not alert.cleared_at else None,
    )


def find_alert(session: Session, budget: Budget, month: str, level: int) -> BudgetAlert | None:
    return session.scalar(
        select(BudgetAlert).where(
            BudgetAlert.scope == budget.scope,
            BudgetAlert.name == budget.name,
            BudgetAlert.month == month,
            BudgetAlert.level == level,
        )
    )


def _find(session: Session, scope: str, name: str) -> Budget | None:
    return session.scalar(select(Budget).where(Budget.scope == scope, Budget.name == name))


def budgets_of(session: Session, user: str | None, projects: set[str | None]) -> list[Budget]:
    """The budgets that apply to a user charging a project: the user's and the project's."""
    rows = []
    if user:
        found = _find(session, "user", user)
        if found:
            rows.append(found)
    for project in sorted(p for p in projects if p):
        found = _find(session, "project", project)
        if found:
            rows.append(found)
    return rows


def visible(
    session: Session, principal: Principal, settings: Settings, now: datetime | None = None
) -> list[Status]:  # noqa: E501
    """Budgets the caller may see: their own and their projects'; all for costs.read_all."""
    require(principal, Permission.COSTS_READ_OWN)
    if principal.can(Permission.COSTS_READ_ALL):
        rows = list(session.scalars(select(Budget).order_by(Budget.scope, Budget.name)))
    else:
        rows = budgets_of(session, principal.name, set(principal.projects))
    return [status(session, settings, b, now) for b in rows]


def own(
    session: Session, principal: Principal, settings: Settings, now: datetime | None = None
) -> list[Status]:
    """The caller's own budget and those of their projects."""
    require(principal, Permission.COSTS_READ_OWN)
    rows = budgets_of(session, principal.name, set(principal.projects))
    return [status(session, settings, b, now) for b in rows]


def set_budget(
    session: Session,
    principal: Principal,
    settings: Settings,
    *,
    scope: str,
    name: str,
    amount: Decimal,
    now: datetime | None = None,
) -> Status:
    """Create or change a monthly budget; raising it above the spend lifts its enforcement."""
    require(principal, Permission.COSTS_MANAGE)
    if scope not in SCOPES:
        raise InvalidInput("a budget's scope is 'user' or 'project'", field="scope")
    if not amount.is_finite() or amount < 0 or amount > Decimal("100000000"):
        raise InvalidInput("a budget is an amount between 0 and 100,000,000", field="amount")
    if scope == "user":
        auth_service.get_user(session, name)
    else:
        get_project(session, name)
    now = now or utcnow()
    budget = _find(session, scope, name)
    previous = budget.amount_cents if budget else None
    if budget is None:
        budget = Budget(scope=scope, name=name, amount_cents=0, updated_by=principal.name)
        session.add(budget)
    budget.amount_cents = int((amount / CENT).to_integral_value())
    budget.updated_by = principal.name
    budget.updated_at = now
    session.flush()
    current = status(session, settings, budget, now)
    cleared = []
    for level in (settings.costs.warn_percent, 100):
        alert = find_alert(session, budget, current.month, 100 if level == 100 else 80)
        threshold = Decimal(level)
        if alert and not alert.cleared_at and current.percent < threshold:
            alert.cleared_at = now
            cleared.append(alert.level)
    audit.record(
        session,
        actor=principal,
        action="costs.budget_set",
        target=f"budget:{scope}:{name}",
        details={
            "previous_cents": previous,
            "amount_cents": budget.amount_cents,
            "raised": previous is not None and budget.amount_cents > previous,
            "cleared_alerts": cleared,
        },
    )
    return status(session, settings, budget, now)


def delete_budget(session: Session, principal: Principal, scope: str, name: str) -> None:
    require(principal, Permission.COSTS_MANAGE)
    budget = _find(session, scope, name)
    if budget is None:
        raise NotFound(f"no budget for {scope} '{name}'")
    session.delete(budget)
    audit.record(session, actor=principal, action="costs.budget_delete", target=f"budget:{scope}:{name}")


def notices(session: Session, principal: Principal, now: datetime | None = None) -> list[str]:
    """Console notices: active alerts of this month for the caller, their projects, or all (stewards)."""
    now = now or utcnow()
    query = select(BudgetAlert).where(BudgetAlert.month == month_of(now), BudgetAlert.cleared_at.is_(None))
    found = []
    for alert in session.scalars(query.order_by(BudgetAlert.level.desc(), BudgetAlert.name)):
        mine = (alert.scope == "user" and alert.name == principal.name) or (
            alert.scope == "project" and alert.name in principal.projects
        )
        if not (mine or principal.can(Permission.COSTS_READ_ALL)):
            continue
        what = f"the {alert.month} budget of {alert.scope} '{alert.name}'"
        if alert.level >= 100:
            when = alert.enforce_after.strftime("%Y-%m-%d %H:%M UTC") if alert.enforce_after else "now"
            found.append(f"Budget spent: {what}; running workspaces stop at {when}.")
        else:
            found.append(f"Budget warning: {what} is {alert.level}% used.")
    return found[:5]

"""The small calls other domains make before spending: launches and large queries are refused
while a budget that applies (the user's or the charged project's) is spent."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from datalibrary.config import Settings
from datalibrary.costs import budgets
from datalibrary.costs.models import BudgetAlert
from datalibrary.db.base import utcnow
from datalibrary.errors import BudgetExceeded


def _exhausted(session: Session, settings: Settings, user: str | None, project: str | None) -> str | None:
    for budget in budgets.budgets_of(session, user, {project}):
        current = budgets.status(session, settings, budget)
        if current.state == "exceeded":
            return current.message()
    return None


def _alerted(session: Session, user: str | None, project: str | None) -> str | None:
    """Without settings: the enforcer's open 100 % alerts of this month say what is spent."""
    alert = session.scalar(
        select(BudgetAlert).where(
            BudgetAlert.month == utcnow().strftime("%Y-%m"),
            BudgetAlert.level == 100,
            BudgetAlert.cleared_at.is_(None),
            or_(
                (BudgetAlert.scope == "user") & (BudgetAlert.name == (user or "")),
                (BudgetAlert.scope == "project") & (BudgetAlert.name == (project or "")),
            ),
        )
    )
    if alert is None:
        return None
    return f"the monthly budget of {alert.scope} '{alert.name}' is spent; ask an administrator to raise it"


def check_launch(session: Session, settings: Settings | None, user: str | None, project: str | None) -> None:
    """Before a workspace is created, started or resumed."""
    if settings is None:
        reason = _alerted(session, user, project)
    else:
        reason = _exhausted(session, settings, user, project)
    if reason:
        raise BudgetExceeded(f"workspace launch refused: {reason}")


def check_query(
    session: Session, settings: Settings, user: str, project: str | None, bytes_scanned: int
) -> None:
    """Before a query runs; queries up to ``costs.block_queries_above_bytes`` always run."""
    if bytes_scanned <= settings.costs.block_queries_above_bytes:
        return
    reason = _exhausted(session, settings, user, project)
    if reason:
        raise BudgetExceeded(
            f"query refused: it scans {bytes_scanned:,} bytes, above the "
            f"{settings.costs.block_queries_above_bytes:,} allowed while {reason}"
        )

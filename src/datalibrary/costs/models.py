"""Cost tables: versioned prices, daily storage measurements, budgets and their alerts.

Cost lines themselves are not stored: they are computed from the usage records (workspace
intervals, query records, storage measurements) and the price version in force at each
moment, so a new price never rewrites a past cost and a report is always reproducible.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from datalibrary.db.base import Base, UTCDateTime, utcnow


class PriceVersion(Base):
    """The whole price book as of ``effective_from``; in force until the next version."""

    __tablename__ = "cost_price_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime(), unique=True)
    # currency, compute_per_hour{type: "0.35"}, home_per_gib_month, lake_per_gib_month,
    # query_per_tb, query_min_bytes: decimal amounts as strings (no float ever)
    prices: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class StorageMeasurement(Base):
    """Bytes held by one dataset or one workspace home on one day, and who pays for them."""

    __tablename__ = "cost_storage_measurements"
    __table_args__ = (UniqueConstraint("kind", "resource", "day", name="uq_cost_storage_kind_resource_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # dataset | home
    resource: Mapped[str] = mapped_column(String(200))  # ns.table | workspace:ID
    day: Mapped[date] = mapped_column(Date, index=True)
    user: Mapped[str] = mapped_column(String(64))
    project: Mapped[str | None] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger)
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Budget(Base):
    """A monthly budget of one user or one project, in integer cents of the price book currency."""

    __tablename__ = "cost_budgets"
    __table_args__ = (UniqueConstraint("scope", "name", name="uq_cost_budgets_scope_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))  # user | project
    name: Mapped[str] = mapped_column(String(64))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BudgetAlert(Base):
    """A threshold (80 or 100 %) crossed by a budget in one month; 100 % carries enforcement."""

    __tablename__ = "cost_budget_alerts"
    __table_args__ = (
        UniqueConstraint("scope", "name", "month", "level", name="uq_cost_budget_alerts_level"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(64))
    month: Mapped[str] = mapped_column(String(7), index=True)  # YYYY-MM
    level: Mapped[int] = mapped_column(Integer)  # 80 | 100
    spent_cents: Mapped[int] = mapped_column(BigInteger)
    budget_cents: Mapped[int] = mapped_column(BigInteger)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    enforce_after: Mapped[datetime | None] = mapped_column(UTCDateTime())
    enforced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Cleared when an admin raises the budget above the spend: the alert stops acting.
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

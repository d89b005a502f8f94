"""What the front ends show of costs: one shape for the API, the CLI's ``--json`` and pages.

Amounts are decimal strings in the price book's currency (never floats)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from datalibrary.costs.engine import CostLine
    from datalibrary.costs.models import PriceVersion


Money = Field(pattern=r"^\d{1,9}(\.\d{1,6})?$", examples=["0.35"])
SIX = Decimal("0.000001")  # a cost line shows 6 decimals; only sums are rounded to cents


class PricesIn(BaseModel):
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
    compute_per_hour: dict[str, str] = Field(default_factory=dict, max_length=500)
    home_per_gib_month: str = Money
    lake_per_gib_month: str = Money
    query_per_tb: str = Money
    query_min_bytes: int = Field(10_000_000, ge=0, le=10**15)
    effective_from: datetime | None = Field(None, description="From when; default now, never in the past")
    note: str = Field("", max_length=500)


class PriceVersionOut(BaseModel):
    id: int
    effective_from: datetime
    prices: dict[str, Any]
    note: str
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, version: PriceVersion) -> PriceVersionOut:
        return cls.model_validate(version, from_attributes=True)


class ReportOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    currency: str
    from_: date = Field(alias="from")
    to: date
    by: str
    rows: list[dict[str, str]] = Field(description="key and amount, largest first")
    total: str = Field(description="The exact sum of every line, rounded once to cents")
    generated_at: datetime


class DashboardOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    currency: str
    from_: date = Field(alias="from")
    to: date
    total: str
    daily: list[dict[str, str]] = Field(description="day and the amount of each category")
    by_category: dict[str, str]
    top_users: dict[str, str]
    top_projects: dict[str, str]
    by_product: dict[str, str]


class CompareOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    currency: str
    from_: date = Field(alias="from")
    to: date
    days: int
    compute_hours: str
    on_demand: str
    dedicated: str
    purchase_price: str
    lifetime_months: int
    dedicated_per_month: str
    average_rate_per_hour: str
    break_even_hours_per_month: str | None
    cheaper: str
    as_of: datetime


class BudgetIn(BaseModel):
    amount: str = Field(
        pattern=r"^(\d{1,8}(\.\d{1,2})?|100000000(\.0{1,2})?)$",
        description="Monthly amount, at most 100,000,000",
        examples=["250.00"],
    )


class BudgetOut(BaseModel):
    scope: str
    name: str
    month: str
    budget: str
    spent: str
    remaining: str
    percent: str
    state: str
    currency: str
    enforce_after: datetime | None
    enforced_at: datetime | None


class MonthOut(BaseModel):
    currency: str
    month: str
    as_of: datetime
    total: str
    by_category: dict[str, str]
    by_day: list[dict[str, str]]
    by_project: dict[str, str]
    running: list[str] = Field(description="Resources counted up to now (running workspaces)")
    budgets: list[BudgetOut]
    notices: list[str]


class EstimateOut(BaseModel):
    bytes_scanned: int
    charged_bytes: int
    price: str
    price_per_tb: str
    currency: str
    large: bool = Field(description="Above costs.estimate_above_bytes: show the price before running")
    tables: list[str]
    project: str | None
    refused_because: str | None = Field(description="Why the query would be refused now (a spent budget)")


class CostLineOut(BaseModel):
    user: str
    project: str | None
    category: str
    product: str
    resource: str
    start: datetime
    end: datetime
    quantity: str
    unit: str
    rate: str
    amount: str = Field(description="This line's amount to 6 decimals; sums are exact, then rounded")

    @classmethod
    def of(cls, line: CostLine) -> CostLineOut:
        return cls(
            user=line.user,
            project=line.project,
            category=line.category,
            product=line.product,
            resource=line.resource,
            start=line.start,
            end=line.end,
            quantity=str(line.quantity.quantize(SIX)),
            unit=line.unit,
            rate=str(line.rate),
            amount=str(line.amount.quantize(SIX)),
        )

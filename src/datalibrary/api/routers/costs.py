"""Costs: the price book, your spend, reports (JSON and CSV), the dashboard, budgets, the
dedicated-machine comparison and the price of a query before it runs.

Amounts are decimal strings in the price book's currency (never floats)."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from datalibrary.api.fields import AccountName
from datalibrary.auth.permissions import Permission, require
from datalibrary.costs import budgets, pricebook, service, storage
from datalibrary.costs.schemas import (
    BudgetIn,
    BudgetOut,
    CompareOut,
    CostLineOut,
    DashboardOut,
    EstimateOut,
    MonthOut,
    PricesIn,
    PriceVersionOut,
    ReportOut,
)
from datalibrary.http.deps import CurrentPrincipal, DbSession, Requires, SettingsDep
from datalibrary.query import service as query_service

router = APIRouter(tags=["costs"])
GroupBy = Literal["user", "project", "category", "product", "day", "resource"]


class EstimateIn(BaseModel):
    sql: str = Field(min_length=1, max_length=100_000)
    project: AccountName | None = None


@router.get("/costs/prices", summary="The price book: every version with the date it applies from",
            dependencies=[Requires(Permission.COSTS_READ_OWN)])  # fmt: skip
def prices(principal: CurrentPrincipal, session: DbSession, settings: SettingsDep) -> list[PriceVersionOut]:
    return [PriceVersionOut.of(v) for v in pricebook.versions(session, principal, settings)]


@router.post("/costs/prices", summary="Add a price version (from now or a future date)", status_code=201,
             dependencies=[Requires(Permission.COSTS_MANAGE)])  # fmt: skip
def add_prices(
    body: PricesIn, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> PriceVersionOut:
    data = body.model_dump(exclude={"effective_from", "note"})
    version = pricebook.add_version(
        session, principal, settings, data, effective_from=body.effective_from, note=body.note
    )
    return PriceVersionOut.of(version)


@router.get("/costs/me", summary="Your spend this month so far (live), by category and by day",
            dependencies=[Requires(Permission.COSTS_READ_OWN)])  # fmt: skip
def me(principal: CurrentPrincipal, session: DbSession, settings: SettingsDep) -> MonthOut:
    data = service.my_month(session, principal, settings)
    data["budgets"] = [s.as_json() for s in budgets.own(session, principal, settings)]
    data["notices"] = budgets.notices(session, principal)
    return MonthOut.model_validate(data)


def _report(
    principal: Any, session: Any, settings: Any, by: str, start: date | None, end: date | None,
    user: str | None, project: str | None,
) -> service.Report:  # fmt: skip
    return service.report(
        session, principal, settings, by=by, start=start, end=end, user=user, project=project
    )


@router.get("/costs/report", summary="Costs of a period grouped by user, project, category, product or day",
            dependencies=[Requires(Permission.COSTS_READ_OWN)])  # fmt: skip
def report(
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    by: GroupBy = "category",
    start: date | None = Query(None, alias="from", description="First day (UTC); default: this month"),
    end: date | None = Query(None, alias="to", description="Last day, included; default: today"),
    user: str | None = Query(None, max_length=64, description="Only this user (costs.read_all for others)"),
    project: AccountName | None = Query(None, description="Only this project (costs.read_all)"),
) -> ReportOut:
    return ReportOut.model_validate(
        _report(principal, session, settings, by, start, end, user, project).as_json()
    )


@router.get("/costs/lines", summary="The cost lines of a period (first 5,000), oldest first",
            dependencies=[Requires(Permission.COSTS_READ_OWN)])  # fmt: skip
def lines(
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    start: date | None = Query(None, alias="from"),
    end: date | None = Query(None, alias="to"),
    user: str | None = Query(None, max_length=64),
    project: AccountName | None = Query(None),
    limit: int = Query(1000, ge=1, le=5000),
) -> list[CostLineOut]:
    found = _report(principal, session, settings, "category", start, end, user, project).lines[:limit]
    return [CostLineOut.of(ln) for ln in found]


def report_csv_text(found: service.Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([found.by, "amount", "currency"])
    for row in found.rows:
        writer.writerow([row["key"], row["amount"], found.currency])
    writer.writerow(["TOTAL", found.total, found.currency])
    return out.getvalue()


@router.get("/costs/report.csv", summary="The same report as CSV", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}},
            dependencies=[Requires(Permission.COSTS_READ_OWN)])  # fmt: skip
def report_csv(
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    by: GroupBy = "category",
    start: date | None = Query(None, alias="from"),
    end: date | None = Query(None, alias="to"),
    user: str | None = Query(None, max_length=64),
    project: AccountName | None = Query(None),
) -> Response:
    found = _report(principal, session, settings, by, start, end, user, project)
    name = f"datalibrary-costs-{found.by}-{found.start}-{found.end}.csv"
    return Response(
        report_csv_text(found),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/costs/dashboard", summary="Daily cost by category, top users and projects, per product",
            dependencies=[Requires(Permission.COSTS_READ_ALL)])  # fmt: skip
def dashboard(
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    start: date | None = Query(None, alias="from"),
    end: date | None = Query(None, alias="to"),
    user: str | None = Query(None, max_length=64),
    project: AccountName | None = Query(None),
) -> DashboardOut:
    data = service.dashboard(session, principal, settings, start=start, end=end, user=user, project=project)
    return DashboardOut.model_validate(_jsonable(data))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


@router.get("/costs/compare", summary="On-demand compute against an equivalent dedicated machine",
            dependencies=[Requires(Permission.COSTS_READ_ALL)])  # fmt: skip
def compare(
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    start: date | None = Query(None, alias="from"),
    end: date | None = Query(None, alias="to"),
    project: AccountName | None = Query(None),
    purchase_price: Decimal | None = Query(None, ge=0, le=10**9),
    lifetime_months: int | None = Query(None, ge=1, le=240),
) -> CompareOut:
    found = service.compare(
        session, principal, settings, start=start, end=end, project=project,
        purchase_price=purchase_price, lifetime_months=lifetime_months,
    )  # fmt: skip
    return CompareOut.model_validate(found)


@router.get("/costs/budgets", summary="Budgets you may see, with spend and what remains this month",
            dependencies=[Requires(Permission.COSTS_READ_OWN)])  # fmt: skip
def list_budgets(principal: CurrentPrincipal, session: DbSession, settings: SettingsDep) -> list[BudgetOut]:
    return [BudgetOut.model_validate(s.as_json()) for s in budgets.visible(session, principal, settings)]


@router.put("/costs/budgets/{scope}/{name}", summary="Set or raise a monthly budget (audited)",
            dependencies=[Requires(Permission.COSTS_MANAGE)])  # fmt: skip
def set_budget(
    scope: Literal["user", "project"],
    name: str,
    body: BudgetIn,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
) -> BudgetOut:
    found = budgets.set_budget(
        session, principal, settings, scope=scope, name=name, amount=Decimal(body.amount)
    )
    return BudgetOut.model_validate(found.as_json())


@router.delete("/costs/budgets/{scope}/{name}", summary="Remove a budget (audited)", status_code=204,
               dependencies=[Requires(Permission.COSTS_MANAGE)])  # fmt: skip
def delete_budget(
    scope: Literal["user", "project"], name: AccountName, principal: CurrentPrincipal, session: DbSession
) -> Response:
    budgets.delete_budget(session, principal, scope, name)
    return Response(status_code=204)


@router.post("/costs/measure", summary="Measure lake and workspace home storage for today now",
             dependencies=[Requires(Permission.COSTS_MANAGE)])  # fmt: skip
def measure(principal: CurrentPrincipal, session: DbSession, settings: SettingsDep) -> dict[str, int]:
    require(principal, Permission.COSTS_MANAGE)
    return {"measured": storage.measure(session, settings)}


@router.post("/query/estimate", summary="Bytes a query would scan and its price, without running it",
             dependencies=[Requires(Permission.QUERY_RUN)])  # fmt: skip
def estimate(
    body: EstimateIn, request: Request, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> EstimateOut:
    from datalibrary.costs import checks
    from datalibrary.errors import BudgetExceeded

    project = query_service.charged_project(principal, body.project)
    scanned, tables = query_service.estimate_bytes(
        session, principal, body.sql, planner=request.app.state.planner
    )
    price = service.estimate(settings, session, scanned)
    refused = None
    try:
        checks.check_query(session, settings, principal.name, project, scanned)
    except BudgetExceeded as exc:
        refused = exc.detail
    return EstimateOut(**price, tables=tables, project=project, refused_because=refused)

"""The Costs section: your spend this month (live) and budgets; for stewards, admins and
auditors the dashboard (charts, filters, CSV export) and the dedicated-machine comparison;
for admins the price book and budgets. Charts are server-side SVG (``web.charts``)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from datalibrary.auth.permissions import Permission, Principal
from datalibrary.costs import budgets, engine, pricebook, service
from datalibrary.errors import DataLibraryError, InvalidInput
from datalibrary.http.deps import DbSession, SettingsDep
from datalibrary.web import charts
from datalibrary.web.forms import attempt
from datalibrary.web.guards import allowed
from datalibrary.web.pages import page_for, page_with
from datalibrary.web.rendering import render

router = APIRouter(include_in_schema=False)
Csrf = Annotated[str, Form()]


def _day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"'{value}' is not a date (YYYY-MM-DD)", field="from") from None


def _dashboard(session: Any, principal: Any, settings: Any, filters: dict[str, str]) -> dict[str, Any]:
    data = service.dashboard(
        session, principal, settings, start=_day(filters["from"]), end=_day(filters["to"]),
        user=filters["user"] or None, project=filters["project"] or None,
    )  # fmt: skip
    currency = data["currency"]
    query = {k: v for k, v in filters.items() if v}
    return {
        **data,
        "daily_chart": charts.stacked_days(
            data["daily"], engine.CATEGORIES, currency, "Daily cost stacked by category"
        ),
        "users_chart": charts.bars(data["top_users"], currency, "Top users", "users"),
        "projects_chart": charts.bars(data["top_projects"], currency, "Top projects", "projects"),
        "products_chart": charts.bars(data["by_product"], currency, "Cost per product", "products"),
        "csv_url": "/api/v1/costs/report.csv?" + urlencode({"by": "user", **query}),
        "api_url": "/api/v1/costs/report?" + urlencode({"by": "user", **query}),
    }


@router.get("/costs")
def costs_page(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    principal: Annotated[Principal, allowed(Permission.COSTS_READ_OWN)],
    start: str = Query("", alias="from", max_length=10),
    end: str = Query("", alias="to", max_length=10),
    user: str = Query("", max_length=64),
    project: str = Query("", max_length=64),
) -> Response:
    page = page_for(request, session, principal, "Costs", active="costs")
    page.notice = " ".join(budgets.notices(session, principal))
    mine = service.my_month(session, principal, settings)
    days = [{"day": d["day"], "total": Decimal(d["amount"])} for d in mine["by_day"]]
    data: dict[str, Any] = {
        "mine": mine,
        "my_chart": charts.stacked_days(days, ("total",), mine["currency"], "Your cost per day this month"),
        "my_budgets": [s.as_json() for s in budgets.own(session, principal, settings)],
        "filters": {"from": start, "to": end, "user": user, "project": project},
        "dashboard": None,
    }
    if principal.can(Permission.COSTS_READ_ALL):
        try:
            data["dashboard"] = _dashboard(session, principal, settings, data["filters"])
        except DataLibraryError as exc:
            page.errors["filters"] = exc.detail
        data["all_budgets"] = [s.as_json() for s in budgets.visible(session, principal, settings)]
    if principal.can(Permission.COSTS_MANAGE):
        data["versions"] = pricebook.versions(session, principal, settings)
    return render(request, "costs.html", page_with(page, **data))


@router.get("/costs/compare")
def compare_page(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    principal: Annotated[Principal, allowed(Permission.COSTS_READ_ALL)],
    start: str = Query("", alias="from", max_length=10),
    end: str = Query("", alias="to", max_length=10),
    project: str = Query("", max_length=64),
    purchase_price: str = Query("", max_length=16),
    lifetime_months: str = Query("", max_length=4),
) -> Response:
    page = page_for(request, session, principal, "Costs: dedicated machine comparison", active="costs")
    form = {"from": start, "to": end, "project": project, "purchase_price": purchase_price,
            "lifetime_months": lifetime_months}  # fmt: skip
    result = None
    try:
        price = Decimal(purchase_price) if purchase_price else None
        months = int(lifetime_months) if lifetime_months else None
        result = service.compare(
            session, principal, settings, start=_day(start), end=_day(end), project=project or None,
            purchase_price=price, lifetime_months=months,
        )  # fmt: skip
    except (InvalidOperation, ValueError):
        page.errors["form"] = "The purchase price and the lifetime are numbers."
    except DataLibraryError as exc:
        page.errors["form"] = exc.detail
    return render(request, "costs_compare.html", page_with(page, form=form, result=result))


@router.post("/costs/budgets")
def budget_form(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    principal: Annotated[Principal, allowed(Permission.COSTS_MANAGE)],
    csrf_token: Csrf = "",
    scope: Annotated[str, Form()] = "user",
    name: Annotated[str, Form()] = "",
    amount: Annotated[str, Form()] = "",
) -> Response:
    errors: dict[str, str] = {}

    def act() -> object:
        try:
            value = Decimal(amount.strip())
        except InvalidOperation:
            raise InvalidInput(f"'{amount}' is not an amount", field="amount") from None
        return budgets.set_budget(session, principal, settings, scope=scope, name=name.strip(), amount=value)

    if attempt(session, principal, csrf_token, act, errors) is None:
        session.rollback()
        page = page_for(request, session, principal, "Costs", active="costs")
        page.errors = errors
        return render(request, "error.html", page_with(page, detail=" ".join(errors.values())), 422)
    return RedirectResponse("/costs#budgets", status_code=303)


@router.post("/costs/prices")
def prices_form(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    principal: Annotated[Principal, allowed(Permission.COSTS_MANAGE)],
    csrf_token: Csrf = "",
    effective_from: Annotated[str, Form()] = "",
    compute_per_hour: Annotated[str, Form()] = "",
    home_per_gib_month: Annotated[str, Form()] = "",
    lake_per_gib_month: Annotated[str, Form()] = "",
    query_per_tb: Annotated[str, Form()] = "",
    query_min_bytes: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    """A new price version; compute prices are ``type=price`` lines."""
    errors: dict[str, str] = {}

    def act() -> object:
        from datetime import UTC, datetime

        current = pricebook.load(session, settings).versions[-1].as_json()
        compute = dict(current["compute_per_hour"])
        for line in compute_per_hour.splitlines():
            if line.strip():
                key, _, value = line.partition("=")
                compute[key.strip()] = value.strip()
        data = {
            "currency": current["currency"],
            "compute_per_hour": compute,
            "home_per_gib_month": home_per_gib_month or current["home_per_gib_month"],
            "lake_per_gib_month": lake_per_gib_month or current["lake_per_gib_month"],
            "query_per_tb": query_per_tb or current["query_per_tb"],
            "query_min_bytes": int(query_min_bytes)
            if query_min_bytes.isdigit()
            else current["query_min_bytes"],
        }
        start = None
        if effective_from:
            try:
                start = datetime.fromisoformat(effective_from)
            except ValueError:
                raise InvalidInput("the date is YYYY-MM-DDTHH:MM", field="effective_from") from None
            start = start if start.tzinfo else start.replace(tzinfo=UTC)
        return pricebook.add_version(session, principal, settings, data, effective_from=start, note=note)

    if attempt(session, principal, csrf_token, act, errors) is None:
        page = page_for(request, session, principal, "Costs", active="costs")
        return render(request, "error.html", page_with(page, detail=" ".join(errors.values())), 422)
    return RedirectResponse("/costs#prices", status_code=303)

"""Reports over cost lines: a user's own spend (live), the dashboard, the CLI/API report,
the estimate before a query and the comparison with a dedicated machine."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy.orm import Session

from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.config import Settings
from datalibrary.costs import engine, pricebook
from datalibrary.costs.engine import CostLine, Scope, cents
from datalibrary.db.base import utcnow
from datalibrary.errors import InvalidInput

GROUPS = ("user", "project", "category", "product", "day", "resource")
Group = Literal["user", "project", "category", "product", "day", "resource"]
DAYS_PER_MONTH = Decimal("365.25") / 12
MAX_DAYS = 3 * 366


def period(start: date | None, end: date | None, now: datetime) -> tuple[datetime, datetime]:
    """``[start, end]`` as UTC datetimes ``[start 00:00, end+1 00:00)``; default: this month."""
    first = start or now.date().replace(day=1)
    last = end or now.date()
    if last < first:
        raise InvalidInput("the period ends before it starts", field="to")
    if (last - first).days > MAX_DAYS:
        raise InvalidInput(f"a report covers at most {MAX_DAYS} days", field="from")
    return engine.day_start(first), engine.day_start(last) + timedelta(days=1)


def cost_lines(
    session: Session,
    settings: Settings,
    start: datetime,
    end: datetime,
    *,
    now: datetime | None = None,
    users: set[str] | None = None,
    projects: set[str | None] | None = None,
) -> tuple[list[CostLine], pricebook.PriceBook]:
    book = pricebook.load(session, settings)
    scope = Scope(
        start=start,
        end=end,
        now=now or utcnow(),
        users=frozenset(users) if users is not None else None,
        projects=frozenset(projects) if projects is not None else None,
    )
    return engine.lines(session, book, scope), book


def money(amount: Decimal) -> str:
    return str(cents(amount))


@dataclass
class Report:
    currency: str
    start: date
    end: date  # inclusive
    by: str
    rows: list[dict[str, str]]
    total: str
    generated_at: datetime
    lines: list[CostLine] = field(default_factory=list, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "by": self.by,
            "rows": self.rows,
            "total": self.total,
            "generated_at": self.generated_at.isoformat(),
        }


def _filters(
    principal: Principal, user: str | None, project: str | None
) -> tuple[set[str] | None, set[str | None] | None]:  # noqa: E501
    """Everyone sees their own costs; costs.read_all sees anybody's."""
    require(principal, Permission.COSTS_READ_OWN)
    if not principal.can(Permission.COSTS_READ_ALL):
        if user not in (None, principal.name) or project is not None:
            require(principal, Permission.COSTS_READ_ALL)
        user = principal.name
    return ({user} if user else None), ({project} if project else None)


def report(
    session: Session,
    principal: Principal,
    settings: Settings,
    *,
    by: str = "category",
    start: date | None = None,
    end: date | None = None,
    user: str | None = None,
    project: str | None = None,
    now: datetime | None = None,
) -> Report:
    """Costs of ``[start, end]`` grouped ``by`` user, project, category, product, day or resource."""
    if by not in GROUPS:
        raise InvalidInput(f"--by must be one of {', '.join(GROUPS)}", field="by")
    users, projects = _filters(principal, user, project)
    now = now or utcnow()
    a, b = period(start, end, now)
    found, book = cost_lines(session, settings, a, b, now=now, users=users, projects=projects)
    grouped = engine.group(found, by)
    return Report(
        currency=book.currency,
        start=a.date(),
        end=(b - timedelta(days=1)).date(),
        by=by,
        rows=[{"key": key, "amount": str(amount)} for key, amount in grouped.items()],
        total=str(engine.total(found)),
        generated_at=now,
        lines=found,
    )


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    return engine.month_start(now), engine.next_month(now)


def spend(
    session: Session,
    settings: Settings,
    *,
    user: str | None = None,
    project: str | None = None,
    now: datetime | None = None,
) -> Decimal:
    """This month's spend so far (exact) of one user or one project, running workspaces included."""
    now = now or utcnow()
    a, b = month_bounds(now)
    found, _ = cost_lines(
        session, settings, a, b, now=now,
        users={user} if user else None, projects={project} if project else None,
    )  # fmt: skip
    return sum((line.amount for line in found), Decimal(0))


def my_month(
    session: Session, principal: Principal, settings: Settings, now: datetime | None = None
) -> dict[str, Any]:  # noqa: E501
    """The caller's spend this month so far: total, by category, by day (every day so far)."""
    require(principal, Permission.COSTS_READ_OWN)
    now = now or utcnow()
    a, b = month_bounds(now)
    found, book = cost_lines(session, settings, a, b, now=now, users={principal.name})
    by_day = engine.group(found, "day")
    days = []
    cursor = a.date()
    while cursor <= now.date():
        days.append(
            {"day": cursor.isoformat(), "amount": str(by_day.get(cursor.isoformat(), cents(Decimal(0))))}
        )
        cursor += timedelta(days=1)
    by_category = engine.group(found, "category")
    return {
        "currency": book.currency,
        "month": a.strftime("%Y-%m"),
        "as_of": now.isoformat(),
        "total": str(engine.total(found)),
        "by_category": {c: str(by_category.get(c, cents(Decimal(0)))) for c in engine.CATEGORIES},
        "by_day": days,
        "by_project": {k: str(v) for k, v in engine.group(found, "project").items()},
        "running": sorted({ln.resource for ln in found if ln.category == "compute" and ln.end == now}),
    }


def dashboard(
    session: Session,
    principal: Principal,
    settings: Settings,
    *,
    start: date | None = None,
    end: date | None = None,
    user: str | None = None,
    project: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """What stewards, admins and auditors see: daily cost by category, top users and projects."""
    require(principal, Permission.COSTS_READ_ALL)
    base = report(session, principal, settings, by="day", start=start, end=end, user=user,
                  project=project, now=now)  # fmt: skip
    found = base.lines
    daily: dict[str, dict[str, Decimal]] = {}
    for line in found:
        bucket = daily.setdefault(line.day.isoformat(), {c: Decimal(0) for c in engine.CATEGORIES})
        bucket[line.category] += line.amount
    days = []
    cursor = base.start
    while cursor <= base.end:
        bucket = daily.get(cursor.isoformat(), {c: Decimal(0) for c in engine.CATEGORIES})
        days.append({"day": cursor.isoformat(), **{c: cents(v) for c, v in bucket.items()}})
        cursor += timedelta(days=1)
    return {
        "currency": base.currency,
        "from": base.start,
        "to": base.end,
        "total": base.total,
        "daily": days,
        "by_category": engine.group(found, "category"),
        "top_users": dict(list(engine.group(found, "user").items())[:10]),
        "top_projects": dict(list(engine.group(found, "project").items())[:10]),
        "by_product": engine.group(found, "product"),
    }


def estimate(
    settings: Settings, session: Session, bytes_scanned: int, now: datetime | None = None
) -> dict[str, Any]:
    """The price of a query scanning ``bytes_scanned`` at today's prices (minimum applied)."""
    book = pricebook.load(session, settings)
    prices = book.at(now or utcnow())
    charged = max(bytes_scanned, prices.query_min_bytes)
    return {
        "bytes_scanned": bytes_scanned,
        "charged_bytes": charged,
        "price": money(Decimal(charged) * prices.query_per_tb / engine.TB),
        "price_per_tb": str(prices.query_per_tb),
        "currency": prices.currency,
        "large": bytes_scanned >= settings.costs.estimate_above_bytes,
    }


def launch_prices(
    session: Session, settings: Settings, now: datetime | None = None
) -> dict[str, dict[str, str]]:  # noqa: E501
    """Per instance type: the price per hour now and for a typical working day."""
    book = pricebook.load(session, settings)
    moment = now or utcnow()
    hours = Decimal(str(settings.costs.working_day_hours))
    found = {}
    for name in sorted({*book.fallback, *book.at(moment).compute_per_hour}):
        rate = book.compute_rate(moment, name)
        found[name] = {
            "price_per_hour": str(rate),
            "working_day": money(rate * hours),
            "working_day_hours": str(hours.normalize()),
            "currency": book.currency,
        }
    return found


def compare(
    session: Session,
    principal: Principal,
    settings: Settings,
    *,
    start: date | None = None,
    end: date | None = None,
    project: str | None = None,
    purchase_price: Decimal | None = None,
    lifetime_months: int | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """On-demand compute of a period against an equivalent dedicated machine written off linearly."""
    require(principal, Permission.COSTS_READ_ALL)
    price = (
        purchase_price if purchase_price is not None else Decimal(str(settings.costs.dedicated_machine_price))
    )
    months = lifetime_months or settings.costs.dedicated_machine_lifetime_months
    if price < 0 or months < 1:
        raise InvalidInput("the purchase price is >= 0 and the lifetime at least one month")
    base = report(session, principal, settings, by="product", start=start, end=end, project=project, now=now)
    compute = [line for line in base.lines if line.category == "compute"]
    hours = sum((line.quantity for line in compute), Decimal(0))
    on_demand = sum((line.amount for line in compute), Decimal(0))
    days = Decimal((base.end - base.start).days + 1)
    dedicated = price * days / (DAYS_PER_MONTH * months)
    average_rate = (on_demand / hours) if hours else Decimal(0)
    monthly_dedicated = price / months
    return {
        "currency": base.currency,
        "from": base.start.isoformat(),
        "to": base.end.isoformat(),
        "days": int(days),
        "compute_hours": str(hours.quantize(Decimal("0.01"))),
        "on_demand": money(on_demand),
        "dedicated": money(dedicated),
        "purchase_price": str(price),
        "lifetime_months": months,
        "dedicated_per_month": money(monthly_dedicated),
        "average_rate_per_hour": str(average_rate.quantize(Decimal("0.0001"))),
        "break_even_hours_per_month": (
            str((monthly_dedicated / average_rate).quantize(Decimal("0.1"))) if average_rate else None
        ),
        "cheaper": "on-demand" if on_demand <= dedicated else "dedicated",
        "as_of": datetime.now(UTC).isoformat() if now is None else now.isoformat(),
    }

"""The price book: versions of every price, each in force from its ``effective_from``.

The first version is seeded from YAML (``costs.price_book``, or the built-in default with the
workspace catalog's hourly prices). A change is a new version from now or a future date:
a past moment is always priced by the version that was in force then.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from datalibrary.audit import service as audit
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.config import Settings
from datalibrary.costs.models import PriceVersion
from datalibrary.db.base import utcnow
from datalibrary.errors import InvalidInput
from datalibrary.workspaces.products import load_catalog

DEFAULT_PRICE_BOOK = Path(__file__).with_name("pricebook.yaml")
BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)
MAX_PRICE = Decimal("1000000")


@dataclass(frozen=True)
class Prices:
    currency: str
    compute_per_hour: dict[str, Decimal]
    home_per_gib_month: Decimal
    lake_per_gib_month: Decimal
    query_per_tb: Decimal
    query_min_bytes: int

    def compute(self, instance_type: str, fallback: Decimal | None = None) -> Decimal:
        return self.compute_per_hour.get(instance_type, fallback or Decimal(0))

    def as_json(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "compute_per_hour": {k: str(v) for k, v in sorted(self.compute_per_hour.items())},
            "home_per_gib_month": str(self.home_per_gib_month),
            "lake_per_gib_month": str(self.lake_per_gib_month),
            "query_per_tb": str(self.query_per_tb),
            "query_min_bytes": self.query_min_bytes,
        }


def _amount(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise InvalidInput(f"{where}: a decimal amount is required", field=where)
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidInput(f"{where}: '{value}' is not a decimal amount", field=where) from None
    if not amount.is_finite() or amount < 0 or amount > MAX_PRICE:
        raise InvalidInput(f"{where}: an amount between 0 and {MAX_PRICE} is required", field=where)
    return amount


def parse_prices(data: Any, source: str = "price book") -> Prices:
    """Validate a price book mapping (YAML or JSON); errors name the offending field."""
    if not isinstance(data, dict):
        raise InvalidInput(f"{source}: the price book must be a mapping")
    unknown = set(data) - {
        "currency", "compute_per_hour", "home_per_gib_month", "lake_per_gib_month",
        "query_per_tb", "query_min_bytes", "effective_from", "note",
    }  # fmt: skip
    if unknown:
        raise InvalidInput(f"{source}: unknown keys {sorted(unknown)}")
    currency = str(data.get("currency", "EUR"))
    if not (len(currency) == 3 and currency.isalpha() and currency.isupper()):
        raise InvalidInput(f"{source}: currency must be an ISO 4217 code such as EUR", field="currency")
    compute = data.get("compute_per_hour") or {}
    if not isinstance(compute, dict) or len(compute) > 500:
        raise InvalidInput(f"{source}: compute_per_hour maps instance types to hourly prices")
    min_bytes = data.get("query_min_bytes", 10_000_000)
    if isinstance(min_bytes, bool) or not isinstance(min_bytes, int) or not 0 <= min_bytes <= 10**15:
        raise InvalidInput(
            f"{source}: query_min_bytes must be a whole number of bytes", field="query_min_bytes"
        )
    return Prices(
        currency=currency,
        compute_per_hour={str(k)[:64]: _amount(v, f"compute_per_hour.{k}") for k, v in compute.items()},
        home_per_gib_month=_amount(data.get("home_per_gib_month", "0.10"), "home_per_gib_month"),
        lake_per_gib_month=_amount(data.get("lake_per_gib_month", "0.023"), "lake_per_gib_month"),
        query_per_tb=_amount(data.get("query_per_tb", "5"), "query_per_tb"),
        query_min_bytes=min_bytes,
    )


def load_yaml(path: Path | None) -> Prices:
    target = Path(path) if path else DEFAULT_PRICE_BOOK
    if not target.is_file():
        raise InvalidInput(f"price book {target} does not exist; fix costs.price_book")
    try:
        data = yaml.safe_load(target.read_text())
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{target}: not valid YAML ({exc})") from exc
    return parse_prices(data, str(target))


def with_catalog_defaults(prices: Prices, settings: Settings) -> Prices:
    """Instance types the price book does not list take the workspace catalog's price."""
    catalog = load_catalog(settings.workspaces.catalog)
    compute = {t.name: Decimal(str(t.price_per_hour)) for t in catalog.instance_types}
    compute.update(prices.compute_per_hour)
    return Prices(
        currency=prices.currency,
        compute_per_hour=compute,
        home_per_gib_month=prices.home_per_gib_month,
        lake_per_gib_month=prices.lake_per_gib_month,
        query_per_tb=prices.query_per_tb,
        query_min_bytes=prices.query_min_bytes,
    )


@dataclass(frozen=True)
class PriceBook:
    """All versions, oldest first; ``at(t)`` is the version in force at ``t``."""

    starts: tuple[datetime, ...]
    versions: tuple[Prices, ...]
    fallback: dict[str, Decimal]  # the catalog's current prices, for types no version lists

    def at(self, moment: datetime) -> Prices:
        index = bisect.bisect_right(self.starts, moment) - 1
        return self.versions[max(index, 0)]

    def changes_between(self, start: datetime, end: datetime) -> list[datetime]:
        return [s for s in self.starts if start < s < end]

    def compute_rate(self, moment: datetime, instance_type: str) -> Decimal:
        return self.at(moment).compute(instance_type, self.fallback.get(instance_type))

    @property
    def currency(self) -> str:
        return self.versions[-1].currency


def ensure_seeded(session: Session, settings: Settings) -> None:
    """Create the first version from the YAML price book if there is none yet."""
    if session.scalar(select(PriceVersion.id).limit(1)) is not None:
        return
    prices = with_catalog_defaults(load_yaml(settings.costs.price_book), settings)
    try:
        with session.begin_nested():  # a concurrent first use may seed it too: theirs wins
            session.add(
                PriceVersion(
                    effective_from=BEGINNING,
                    prices=prices.as_json(),
                    note="seeded from the price book YAML",
                    created_by="system:costs",
                )
            )
    except IntegrityError:
        pass


def load(session: Session, settings: Settings) -> PriceBook:
    ensure_seeded(session, settings)
    rows = list(session.scalars(select(PriceVersion).order_by(PriceVersion.effective_from)))
    catalog = load_catalog(settings.workspaces.catalog)
    return PriceBook(
        starts=tuple(r.effective_from for r in rows),
        versions=tuple(parse_prices(r.prices, f"price version {r.id}") for r in rows),
        fallback={t.name: Decimal(str(t.price_per_hour)) for t in catalog.instance_types},
    )


def versions(session: Session, principal: Principal, settings: Settings) -> list[PriceVersion]:
    require(principal, Permission.COSTS_READ_OWN)
    ensure_seeded(session, settings)
    return list(session.scalars(select(PriceVersion).order_by(PriceVersion.effective_from)))


def add_version(
    session: Session,
    principal: Principal,
    settings: Settings,
    data: dict[str, Any],
    *,
    effective_from: datetime | None = None,
    note: str = "",
    now: datetime | None = None,
) -> PriceVersion:
    """A new version from ``effective_from`` (default: now); never earlier than now."""
    require(principal, Permission.COSTS_MANAGE)
    now = (now or utcnow()).replace(microsecond=0)
    start = (effective_from or now).replace(microsecond=0)
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    if start < now:
        raise InvalidInput(
            "prices take effect from now or a future date; past costs are never rewritten",
            field="effective_from",
        )
    ensure_seeded(session, settings)
    prices = with_catalog_defaults(parse_prices(data), settings)
    existing = session.scalar(select(PriceVersion).where(PriceVersion.effective_from == start))
    if existing is not None:  # a not-yet-effective version may be replaced
        existing.prices = prices.as_json()
        existing.note = note[:500]
        existing.created_by = principal.name
        version = existing
    else:
        version = PriceVersion(
            effective_from=start, prices=prices.as_json(), note=note[:500], created_by=principal.name
        )
        session.add(version)
    session.flush()
    audit.record(
        session,
        actor=principal,
        action="costs.prices_set",
        target=f"price_version:{version.id}",
        details={"effective_from": start.isoformat(), **prices.as_json()},
    )
    return version

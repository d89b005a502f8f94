"""The cost engine: cost lines from usage records and the price book, exactly.

Every amount is a ``Decimal`` computed from integers (seconds, bytes) and decimal prices; no
float is ever involved. A usage interval is cut at every UTC day boundary (so months are cut
too) and at every price change, and each piece is priced by the version in force at its start.
Open intervals (a workspace still running) count up to ``now``. Sums are rounded to cents once,
at the end (half up), never line by line.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from datalibrary.auth.models import User
from datalibrary.costs.models import StorageMeasurement
from datalibrary.costs.pricebook import PriceBook
from datalibrary.files.models import FileRead
from datalibrary.query.models import QueryRecord
from datalibrary.workspaces.models import Workspace, WorkspaceUsage

CATEGORIES = ("compute", "storage", "query")
GIB = Decimal(1024**3)
TB = Decimal(10**12)
HOUR = Decimal(3600)
CENT = Decimal("0.01")
HOME_STATES = {"stopped", "paused", "failed"}  # the home is kept, no machine runs


@dataclass(frozen=True)
class CostLine:
    user: str
    project: str | None
    category: str  # compute | storage | query
    product: str  # workspace product, "query", "file read", "lake storage", "home storage"
    resource: str  # workspace:7 | query:<run id> | file-read:<id> | dataset:ns.table | home:workspace:7
    start: datetime
    end: datetime
    quantity: Decimal
    unit: str  # hour | GiB-month | TB
    rate: Decimal
    amount: Decimal  # exact; round only sums

    @property
    def day(self) -> date:
        return self.start.date()


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def month_seconds(moment: datetime) -> int:
    return calendar.monthrange(moment.year, moment.month)[1] * 86400


def month_start(moment: datetime) -> datetime:
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def next_month(moment: datetime) -> datetime:
    start = month_start(moment)
    return (start + timedelta(days=32)).replace(day=1)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def pieces(start: datetime, end: datetime, book: PriceBook) -> Iterator[tuple[datetime, datetime]]:
    """``[start, end)`` cut at UTC midnights and at price changes."""
    cuts = set(book.changes_between(start, end))
    midnight = day_start(start.date()) + timedelta(days=1)
    while midnight < end:
        cuts.add(midnight)
        midnight += timedelta(days=1)
    points = [start, *sorted(cuts), end]
    for a, b in zip(points, points[1:], strict=False):
        if b > a:
            yield a, b


def _seconds(a: datetime, b: datetime) -> Decimal:
    return Decimal(int((b - a).total_seconds()))


@dataclass(frozen=True)
class Scope:
    """What a report covers: ``[start, end)``, clipped to ``now``; optional user/project filters."""

    start: datetime
    end: datetime
    now: datetime
    users: frozenset[str] | None = None
    projects: frozenset[str | None] | None = None

    @property
    def until(self) -> datetime:
        return min(self.end, self.now)

    def wants(self, user: str, project: str | None) -> bool:
        return (self.users is None or user in self.users) and (
            self.projects is None or project in self.projects
        )


def _user_names(session: Session, ids: Iterable[int]) -> dict[int, str]:
    ids = set(ids)
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.name).where(User.id.in_(ids))).all())  # type: ignore[arg-type]


def workspace_lines(session: Session, book: PriceBook, scope: Scope) -> list[CostLine]:
    """Compute while running; home storage while stopped, paused or failed (daily measurement)."""
    until = scope.until
    if until <= scope.start:
        return []
    rows = session.execute(
        select(WorkspaceUsage, Workspace.product)
        .join(Workspace, Workspace.id == WorkspaceUsage.workspace_id)
        .where(
            WorkspaceUsage.started_at < until,
            or_(WorkspaceUsage.ended_at.is_(None), WorkspaceUsage.ended_at > scope.start),
            WorkspaceUsage.state.in_({"running", "pooled", *HOME_STATES}),
        )
        .order_by(WorkspaceUsage.started_at, WorkspaceUsage.id)
    ).all()
    names = _user_names(session, (u.user_id for u, _ in rows))
    homes = _home_bytes(session, scope, {u.workspace_id for u, _ in rows if u.state in HOME_STATES})
    lines: list[CostLine] = []
    for usage, product in rows:
        user = names.get(usage.user_id, f"user:{usage.user_id}")
        if not scope.wants(user, usage.project):
            continue
        a = max(usage.started_at, scope.start)
        b = min(usage.ended_at or until, until)
        for p, q in pieces(a, b, book):
            seconds = _seconds(p, q)
            prices = book.at(p)
            if usage.state in ("running", "pooled"):  # pooled: a warm-pool member, the pool account's
                rate = book.compute_rate(p, usage.instance_type)
                hours = seconds / HOUR
                lines.append(
                    CostLine(user, usage.project, "compute", product, f"workspace:{usage.workspace_id}",
                             p, q, hours, "hour", rate, rate * seconds / HOUR)
                )  # fmt: skip
                continue
            size = homes.get((usage.workspace_id, p.date()), 0)
            if not size:
                continue
            gib_months = Decimal(size) * seconds / (GIB * month_seconds(p))
            rate = prices.home_per_gib_month
            lines.append(
                CostLine(user, usage.project, "storage", "home storage", f"home:{usage.workspace_id}",
                         p, q, gib_months, "GiB-month", rate,
                         Decimal(size) * seconds * rate / (GIB * month_seconds(p)))
            )  # fmt: skip
    return lines


def _home_bytes(session: Session, scope: Scope, workspace_ids: set[int]) -> dict[tuple[int, date], int]:
    if not workspace_ids:
        return {}
    resources = {f"workspace:{i}": i for i in workspace_ids}
    rows = session.scalars(
        select(StorageMeasurement).where(
            StorageMeasurement.kind == "home",
            StorageMeasurement.resource.in_(resources),
            StorageMeasurement.day >= scope.start.date(),
            StorageMeasurement.day <= scope.until.date(),
        )
    )
    return {(resources[m.resource], m.day): m.bytes for m in rows}


def dataset_lines(session: Session, book: PriceBook, scope: Scope) -> list[CostLine]:
    """Lake storage: each daily measurement covers its UTC day (up to now for today)."""
    until = scope.until
    if until <= scope.start:
        return []
    rows = session.scalars(
        select(StorageMeasurement).where(
            StorageMeasurement.kind == "dataset",
            StorageMeasurement.day >= scope.start.date(),
            StorageMeasurement.day <= until.date(),
        )
    )
    lines: list[CostLine] = []
    for m in rows:
        if not m.bytes or not scope.wants(m.user, m.project):
            continue
        a = max(day_start(m.day), scope.start)
        b = min(day_start(m.day) + timedelta(days=1), until)
        for p, q in pieces(a, b, book):
            seconds = _seconds(p, q)
            rate = book.at(p).lake_per_gib_month
            denominator = GIB * month_seconds(p)
            lines.append(
                CostLine(m.user, m.project, "storage", "lake storage", f"dataset:{m.resource}", p, q,
                         Decimal(m.bytes) * seconds / denominator, "GiB-month", rate,
                         Decimal(m.bytes) * seconds * rate / denominator)
            )  # fmt: skip
    return lines


def query_lines(session: Session, book: PriceBook, scope: Scope) -> list[CostLine]:
    """Successful queries: max(bytes scanned, minimum) per TB, at the price of their start."""
    until = scope.until
    conditions = [
        QueryRecord.outcome == "success",
        QueryRecord.started_at >= scope.start,
        QueryRecord.started_at < until,
    ]
    if scope.users is not None:
        conditions.append(QueryRecord.user.in_(scope.users))
    lines: list[CostLine] = []
    for record in session.scalars(select(QueryRecord).where(and_(*conditions)).order_by(QueryRecord.id)):
        if not scope.wants(record.user, record.project):
            continue
        prices = book.at(record.started_at)
        charged = Decimal(max(record.bytes_scanned, prices.query_min_bytes))
        lines.append(
            CostLine(record.user, record.project, "query", "query", f"query:{record.run_id}",
                     record.started_at, record.finished_at or record.started_at, charged / TB, "TB",
                     prices.query_per_tb, charged * prices.query_per_tb / TB)
        )  # fmt: skip
    return lines


def file_read_lines(session: Session, book: PriceBook, scope: Scope) -> list[CostLine]:
    """Files served from collections (download, SDK, DICOMweb, thumbnails): their bytes per TB at
    the query price of the moment they were read, in the query category. No per-read minimum:
    a thumbnail is a few kilobytes, not a table scan."""
    conditions = [FileRead.read_at >= scope.start, FileRead.read_at < scope.until]
    if scope.users is not None:
        conditions.append(FileRead.user.in_(scope.users))
    found: list[CostLine] = []
    for read in session.scalars(select(FileRead).where(and_(*conditions)).order_by(FileRead.id)):
        if not scope.wants(read.user, read.project):
            continue
        prices = book.at(read.read_at)
        size = Decimal(read.bytes)
        found.append(
            CostLine(read.user, read.project, "query", "file read", f"file-read:{read.id}", read.read_at,
                     read.read_at, size / TB, "TB", prices.query_per_tb, size * prices.query_per_tb / TB)
        )  # fmt: skip
    return found


def lines(session: Session, book: PriceBook, scope: Scope) -> list[CostLine]:
    """Every cost line of the scope, ordered by start."""
    found = [
        *workspace_lines(session, book, scope),
        *dataset_lines(session, book, scope),
        *query_lines(session, book, scope),
        *file_read_lines(session, book, scope),
    ]
    return sorted(found, key=lambda line: (line.start, line.category, line.resource))


def total(found: Iterable[CostLine]) -> Decimal:
    return cents(sum((line.amount for line in found), Decimal(0)))


def group(found: Iterable[CostLine], key: str) -> dict[str, Decimal]:
    """Sums (rounded to cents) by user, project, category, product, resource or day."""
    sums: dict[str, Decimal] = {}
    for line in found:
        value = line.day.isoformat() if key == "day" else getattr(line, key)
        name = value if value is not None else "(none)"
        sums[name] = sums.get(name, Decimal(0)) + line.amount
    return {k: cents(v) for k, v in sorted(sums.items(), key=lambda kv: (-kv[1], kv[0]))}

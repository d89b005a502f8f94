"""A restricted caller's query, run as the service does (guard, views, locked engine), over
generated Parquet files, and an independent reference of what that caller may see.

The reference is plain Python over the raw rows with SQL's three-valued logic written out:
a row is visible only where the grant's filter is TRUE (NULL and FALSE hide it)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from datalibrary.access.service import Access
from datalibrary.query import engine, guard
from datalibrary.query.service import build_view
from datalibrary.query.table_planner import PlannedTable

LIMITS = engine.EngineLimits(memory_limit="256MB", threads=1, timeout_seconds=30, max_rows=100_000)
SCHEMA = pa.schema(
    [
        ("pid", pa.string()),
        ("site", pa.string()),
        ("age", pa.int64()),
        ("visit", pa.date32()),
        ("score", pa.float64()),  # hidden by every grant here
        ("name", pa.string()),  # masked by every grant here
    ]
)
GRANTED = ["pid", "site", "age", "visit", "name"]
MASKS = {"name": "null"}
HIDDEN_MARK = "HIDDEN-"  # every name value starts with it; it must never come back


@dataclass(frozen=True)
class Leaf:
    """A row-filter leaf: its SQL and its Python three-valued meaning (None = NULL)."""

    sql: str
    value: Callable[[dict[str, Any]], bool | None]


def _cmp(
    column: str, op: Callable[[Any, Any], bool], literal: Any
) -> Callable[[dict[str, Any]], bool | None]:
    return lambda row: None if row[column] is None else op(row[column], literal)


def leaves() -> list[Leaf]:
    day = dt.date(2020, 6, 1)
    return [
        Leaf("site = 'A'", _cmp("site", lambda a, b: a == b, "A")),
        Leaf("site <> 'A'", _cmp("site", lambda a, b: a != b, "A")),
        Leaf("site IN ('A', 'B')", _cmp("site", lambda a, b: a in b, ("A", "B"))),
        Leaf("site NOT IN ('B')", _cmp("site", lambda a, b: a not in b, ("B",))),
        Leaf("NOT (site = 'C')", _cmp("site", lambda a, b: a != b, "C")),
        Leaf("site IS NULL", lambda row: row["site"] is None),
        Leaf("site IS NOT NULL", lambda row: row["site"] is not None),
        Leaf("site LIKE 'A%'", _cmp("site", lambda a, b: a.startswith(b), "A")),
        Leaf("age > 40", _cmp("age", lambda a, b: a > b, 40)),
        Leaf("age <= 30", _cmp("age", lambda a, b: a <= b, 30)),
        Leaf("age BETWEEN 20 AND 50", _cmp("age", lambda a, b: b[0] <= a <= b[1], (20, 50))),
        Leaf("visit >= DATE '2020-06-01'", _cmp("visit", lambda a, b: a >= b, day)),
        Leaf("visit < '2020-06-01'", _cmp("visit", lambda a, b: a < b, day)),
    ]


def and3(a: bool | None, b: bool | None) -> bool | None:
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def or3(a: bool | None, b: bool | None) -> bool | None:
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


def not3(a: bool | None) -> bool | None:
    return None if a is None else not a


@dataclass(frozen=True)
class Filter:
    sql: str
    value: Callable[[dict[str, Any]], bool | None]


def combine(kind: str, left: Filter, right: Filter | None = None) -> Filter:
    if kind == "not":
        return Filter(f"NOT ({left.sql})", lambda r: not3(left.value(r)))
    assert right is not None
    if kind == "and":
        return Filter(f"({left.sql}) AND ({right.sql})", lambda r: and3(left.value(r), right.value(r)))
    return Filter(f"({left.sql}) OR ({right.sql})", lambda r: or3(left.value(r), right.value(r)))


def make_rows(n: int, seed: int) -> list[dict[str, Any]]:
    import random

    rng = random.Random(seed)
    sites = ["A", "B", "C", "AB", None]
    rows = []
    for i in range(n):
        rows.append(
            {
                "pid": f"p{i:04d}",
                "site": rng.choice(sites),
                "age": rng.choice([None, *range(15, 70)]),
                "visit": rng.choice([None, dt.date(2020, 1, 1) + dt.timedelta(days=rng.randrange(365))]),
                "score": rng.random() * 100,
                "name": f"{HIDDEN_MARK}{i}",
            }
        )
    return rows


def write_files(rows: list[dict[str, Any]], directory: Path, parts: int) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    size = max(1, -(-len(rows) // parts))
    for index in range(0, len(rows), size):
        path = directory / f"part-{index}.parquet"
        pq.write_table(pa.Table.from_pylist(rows[index : index + size], schema=SCHEMA), path)
        files.append(str(path))
    return files


def view_for(
    files: list[str], row_filter: str | None, namespace: str = "s", table: str = "t"
) -> engine.ViewSpec:
    planned = PlannedTable("s", table, SCHEMA, files, 1)
    grant = Access(columns=frozenset(GRANTED), masks=dict(MASKS), row_filter=row_filter)
    return build_view(planned, grant)


def run_as_caller(sql: str, view: engine.ViewSpec) -> pa.Table:
    guarded = guard.check(sql)
    rendered = guarded.render({ref: view.name for ref in guarded.refs})
    return engine.run(rendered, [view], LIMITS).table


def visible(
    rows: list[dict[str, Any]], predicate: Callable[[dict[str, Any]], bool | None] | None
) -> list[dict]:
    return [r for r in rows if predicate is None or predicate(r) is True]

"""Run the DuckDB-derived SQL corpus as a restricted caller and count leaks.

The caller's table ``s.t`` carries the column names DuckDB's tests use most (i, j, k, a, b,
x, y, id, v...), so many statements bind. Every value the caller must not see is marked:
rows hidden by the row filter hold ``ROWLEAK`` strings and integers >= 900000, the masked
column ``name`` holds ``MASKLEAK``, the hidden columns hold ``COLLEAK`` and 7777777.x.
A statement leaks if any cell of its result shows one of them."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from datalibrary.access.service import Access
from datalibrary.errors import DataLibraryError
from datalibrary.query import engine, guard
from datalibrary.query.service import build_view
from datalibrary.query.table_planner import PlannedTable

CORPUS = Path(__file__).parent / "data" / "duckdb_corpus.jsonl.gz"
VISIBLE = ["site", "i", "j", "k", "a", "b", "c", "x", "y", "id", "v", "s"]
MASKED = ["name"]
HIDDEN = ["score", "secret"]
LIMITS = engine.EngineLimits(memory_limit="256MB", threads=1, timeout_seconds=3, max_rows=2000)


@dataclass
class Counts:
    tried: int = 0
    refused: int = 0
    accepted: int = 0
    ran: int = 0
    failed: int = 0
    leaked: int = 0
    leaks: list[str] = field(default_factory=list)


def load(limit: int | None = None, every: int = 1) -> list[str]:
    with gzip.open(CORPUS, "rt", encoding="utf-8") as lines:
        statements = [json.loads(line)["sql"] for line in lines]
    return statements[::every][:limit]


def make_view(directory: Path) -> engine.ViewSpec:
    rows = []
    for n in range(60):
        shown = n % 3 == 0
        big = n if shown else 900_000 + n
        rows.append(
            {
                "site": "A" if shown else (None if n % 2 else "B"),
                "i": big, "j": big + 1, "k": big + 2, "id": big, "v": big,
                "a": f"a{n}" if shown else f"ROWLEAK-a{n}",
                "b": f"b{n}" if shown else f"ROWLEAK-b{n}",
                "c": float(n) if shown else 900_000.5 + n,
                "x": n if shown else 900_000 + n,
                "y": n * 2 if shown else 900_000 + n,
                "s": f"s{n}" if shown else f"ROWLEAK-s{n}",
                "name": f"MASKLEAK-{n}",
                "score": 7_777_777.25 + n,
                "secret": f"COLLEAK-{n}",
            }
        )  # fmt: skip
    table = pa.Table.from_pylist(rows)
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for part in range(2):
        path = directory / f"part-{part}.parquet"
        pq.write_table(table.slice(part * 30, 30), path)
        files.append(str(path))
    planned = PlannedTable("s", "t", table.schema, files, 1)
    grant = Access(columns=frozenset(VISIBLE + MASKED), masks={"name": "null"}, row_filter="site = 'A'")
    return build_view(planned, grant)


def leaks(table: pa.Table) -> bool:
    names = " ".join(table.column_names)
    if any(marker in names for marker in ("LEAK", "7777777")):
        return True
    for column in table.columns:
        text = column.to_string(window=LIMITS.max_rows, container_window=LIMITS.max_rows)
        if "LEAK" in text or "7777777" in text:
            return True
        numeric = pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
        if numeric:
            values = pc.cast(column, pa.float64(), safe=False)
            if pc.any(pc.and_(pc.greater_equal(values, 900_000), pc.less(values, 1_000_000))).as_py():
                return True
    return False


def run(statements: list[str], view: engine.ViewSpec) -> Counts:
    counts = Counts()
    for sql in statements:
        counts.tried += 1
        try:
            guarded = guard.check(sql)
            if any(ref != guard.TableRef("s", "t", ref.snapshot_id, ref.as_of) for ref in guarded.refs):
                raise guard.refuse("names another table")
            rendered = guarded.render({ref: view.name for ref in guarded.refs})
        except DataLibraryError:
            counts.refused += 1
            continue
        counts.accepted += 1
        try:
            result = engine.run(rendered, [view], LIMITS)
        except DataLibraryError:
            counts.failed += 1
            continue
        counts.ran += 1
        if leaks(result.table):
            counts.leaked += 1
            counts.leaks.append(sql)
    return counts

"""The row-security compiler: one parsed filter, two targets that agree where it matters.
The view predicate hides rows whose filter is NULL; the Iceberg pruning expression never
drops a file that holds a row the predicate shows (hypothesis, data with NULLs, real Iceberg
statistics from pyiceberg)."""

from __future__ import annotations

import tempfile

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from pyiceberg.catalog.sql import SqlCatalog

from datalibrary.access.rowsecurity import ColumnStats, FileStats, RowSecurity, compile_filter
from datalibrary.query import metering
from tests.security_helpers import SCHEMA, Filter, make_rows
from tests.test_query_differential import _filters


@pytest.fixture(scope="module")
def lake_table():  # type: ignore[no-untyped-def]
    directory = tempfile.mkdtemp(prefix="rowsec-")
    catalog = SqlCatalog("t", uri=f"sqlite:///{directory}/c.db", warehouse=f"file://{directory}")
    catalog.create_namespace("s")
    table = catalog.create_table("s.t", schema=SCHEMA)
    rows = make_rows(120, 3)
    # files by site and by age band, so statistics differ between files (and some hold NULLs)
    for chunk in (rows[i : i + 15] for i in range(0, len(rows), 15)):
        chunk = sorted(chunk, key=lambda r: (r["site"] or "", r["age"] or 0))
        table.append(pa.Table.from_pylist(chunk, schema=SCHEMA))
    for site in ("A", None):
        only = [dict(r, site=site) for r in rows[:5]]
        table.append(pa.Table.from_pylist(only, schema=SCHEMA))
    return table


def _visible_count(path: str, security: RowSecurity) -> int:
    con = duckdb.connect()
    con.register("f", pq.read_table(path.removeprefix("file://")))
    return con.execute(f"SELECT count(*) FROM f WHERE {security.view_predicate()}").fetchone()[0]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(row_filter=_filters())
def test_pruning_never_drops_a_visible_row(lake_table, row_filter: Filter) -> None:  # type: ignore[no-untyped-def]
    security = compile_filter(row_filter.sql)
    assert security is not None
    every = {task.file.file_path for task in lake_table.scan().plan_files()}
    expression = security.iceberg(SCHEMA)
    kept = {task.file.file_path for task in lake_table.scan(row_filter=expression).plan_files()}
    for path in every - kept:
        assert _visible_count(path, security) == 0, (row_filter.sql, repr(expression))


def test_pruning_prunes_where_it_can(lake_table) -> None:  # type: ignore[no-untyped-def]
    every = list(lake_table.scan().plan_files())
    for sql in ["site IS NULL", "site = 'A'", "age > 68", "NOT (site IS NOT NULL)"]:
        kept = list(lake_table.scan(row_filter=compile_filter(sql).iceberg(SCHEMA)).plan_files())
        assert len(kept) < len(every), sql


def test_null_means_not_visible() -> None:
    security = compile_filter("site <> 'USA'")
    con = duckdb.connect()
    con.register("f", pa.table({"site": ["USA", "FRA", None]}))
    rows = con.execute(f"SELECT site FROM f WHERE {security.view_predicate()}").fetchall()
    assert rows == [("FRA",)]


def test_untranslatable_leaves_never_prune_under_not() -> None:
    for sql in ["NOT (lower(site) = 'a')", "NOT (site = 'A' AND lower(site) = 'a')", "NOT (age + 1 > 3)"]:
        expression = compile_filter(sql).iceberg(SCHEMA)
        assert repr(expression) == "AlwaysTrue()", sql


def _file_stats(path: str) -> FileStats:
    facts = metering.file_facts(path.removeprefix("file://"))
    columns = {name: ColumnStats(*bounds) for name, bounds in facts.bounds.items()}
    return FileStats(facts.rows, columns, {f.name.lower(): f.type for f in SCHEMA})


def _row_count(path: str) -> int:
    return pq.read_metadata(path.removeprefix("file://")).num_rows


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(row_filter=_filters())
def test_statistics_prove_a_filter_only_where_every_row_is_visible(lake_table, row_filter: Filter) -> None:  # type: ignore[no-untyped-def]
    """A file read without the filter (its statistics prove it) must show every row under the
    view predicate, NULLs included."""
    security = compile_filter(row_filter.sql)
    assert security is not None
    for task in lake_table.scan().plan_files():
        path = task.file.file_path
        if security.holds_everywhere(_file_stats(path)):
            assert _visible_count(path, security) == _row_count(path), row_filter.sql


def test_statistics_prove_what_they_can_and_no_more(lake_table) -> None:  # type: ignore[no-untyped-def]
    paths = [task.file.file_path for task in lake_table.scan().plan_files()]
    # a file of site 'A' only (no NULL) is proven for site = 'A' and site <> 'B' ...
    only_a = [p for p in paths if _file_stats(p).columns.get("site") == ColumnStats("A", "A", 0)]
    assert only_a
    for sql in ["site = 'A'", "site IN ('A', 'B')", "site <> 'B'", "NOT (site = 'B')", "site IS NOT NULL"]:
        assert compile_filter(sql).holds_everywhere(_file_stats(only_a[0])), sql
    # ... while a file whose sites are all NULL proves no comparison, negated or not
    only_null = [p for p in paths if (c := _file_stats(p).columns.get("site")) and c.nulls == _row_count(p)]
    assert only_null
    for sql in [
        "site <> 'USA'",
        "site NOT IN ('USA')",
        "NOT (site = 'USA')",
        "NOT (site > 'Z')",
        "site = 'A'",
    ]:
        assert not compile_filter(sql).holds_everywhere(_file_stats(only_null[0])), sql
    assert compile_filter("site IS NULL").holds_everywhere(_file_stats(only_null[0]))

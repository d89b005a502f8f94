"""The locked-down DuckDB engine over restricted views, on real Parquet files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datalibrary.errors import InvalidInput, Unavailable
from datalibrary.query import engine, metering
from datalibrary.query.column_cache import COLUMNS
from datalibrary.query.guard import TableRef, check

LIMITS = engine.EngineLimits(memory_limit="512MB", threads=1, timeout_seconds=20, max_rows=10_000)


@pytest.fixture(autouse=True, params=["column cache", "streamed"])
def _both_read_paths(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs with the column cache and without it (the dataset, with pushdown)."""
    budget = LIMITS.cache_bytes if request.param == "column cache" else 0
    monkeypatch.setitem(globals(), "LIMITS", dataclasses.replace(LIMITS, cache_bytes=budget))
    engine.DATABASES.clear()
    COLUMNS.forget()


@pytest.fixture
def lb_files(tmp_path: Path) -> list[str]:
    files = []
    for part, sites in enumerate([["701", "702"], ["703", "704"]]):
        n = 1000
        table = pa.table(
            {
                "usubjid": [f"S-{sites[i % 2]}-{i:04d}" for i in range(n)],
                "siteid": [sites[i % 2] for i in range(n)],
                "lbtestcd": ["ALT" if i % 3 else "AST" for i in range(n)],
                "lbstresn": [float(i) for i in range(n)],
                "secret": [f"hidden-{i}" for i in range(n)],
            }
        )
        path = tmp_path / f"part-{part}.parquet"
        pq.write_table(table, path, compression="zstd")
        files.append(str(path))
    return files


def view(
    files: list[str], *, row_filter: str | None = "siteid IN ('701', '703')", masks=None
) -> engine.ViewSpec:
    schema = pq.read_schema(files[0])
    columns = {name: engine.quote(name) for name in ["usubjid", "siteid", "lbtestcd", "lbstresn"]}
    columns.update(masks or {})
    return engine.ViewSpec(name="dl_v1", files=files, schema=schema, columns=columns, row_filter=row_filter)


def run(sql: str, spec: engine.ViewSpec) -> pa.Table:
    guarded = check(sql)
    rendered = guarded.render({ref: spec.name for ref in guarded.refs})
    return engine.run(rendered, [spec], LIMITS).table


VISIBLE = {"701", "703"}
# Each form with the exact sites it must return under the grant (701 and 703 of 701-704): a
# subset check alone would pass on an empty answer.
FORMS = {
    "plain": ("SELECT DISTINCT siteid FROM s.lb", VISIBLE),
    "subquery": ("SELECT DISTINCT siteid FROM (SELECT * FROM s.lb) q", VISIBLE),
    "cte": ("WITH a AS (SELECT siteid FROM s.lb) SELECT DISTINCT siteid FROM a", VISIBLE),
    "join": ("SELECT DISTINCT a.siteid FROM s.lb a JOIN s.lb b ON a.usubjid = b.usubjid", VISIBLE),
    "union": ("SELECT siteid FROM s.lb UNION SELECT siteid FROM s.lb", VISIBLE),
    "window": (
        "SELECT DISTINCT siteid FROM (SELECT siteid, rank() OVER (PARTITION BY siteid) FROM s.lb)",
        VISIBLE,
    ),
    # no 702 row is visible inside the subquery either: nothing exists, nothing is returned
    "exists": (
        "SELECT DISTINCT siteid FROM s.lb WHERE EXISTS (SELECT 1 FROM s.lb x WHERE x.siteid = '702')",
        set(),
    ),
    "exists_visible": (
        "SELECT DISTINCT siteid FROM s.lb WHERE EXISTS (SELECT 1 FROM s.lb x WHERE x.siteid = '703')",
        VISIBLE,
    ),
    "or_true": ("SELECT DISTINCT siteid FROM s.lb WHERE siteid = '702' OR 1 = 1", VISIBLE),
    "lateral": (
        "SELECT DISTINCT t.siteid FROM s.lb a, LATERAL (SELECT b.siteid FROM s.lb b "
        "WHERE b.usubjid = a.usubjid LIMIT 5) t",
        VISIBLE,
    ),
}


@pytest.mark.parametrize("form", FORMS)
def test_row_filter_holds_through_every_sql_form(lb_files: list[str], form: str) -> None:
    sql, expected = FORMS[form]
    sites = set(run(sql, view(lb_files)).column(0).to_pylist())
    assert sites == expected


def test_without_the_row_filter_every_site_is_returned(lb_files: list[str]) -> None:
    """The forms above are not vacuous: the same data without the filter shows all four sites."""
    sql, _ = FORMS["plain"]
    assert set(run(sql, view(lb_files, row_filter=None)).column(0).to_pylist()) == {
        "701",
        "702",
        "703",
        "704",
    }


def test_hidden_columns_are_invisible(lb_files: list[str]) -> None:
    result = run("SELECT * FROM s.lb", view(lb_files))
    assert "secret" not in result.column_names
    with pytest.raises(InvalidInput, match="secret"):
        run("SELECT secret FROM s.lb", view(lb_files))
    with pytest.raises(InvalidInput):
        run("SELECT lb.secret FROM s.lb", view(lb_files))


def test_masks_replace_values(lb_files: list[str]) -> None:
    spec = view(lb_files, masks={"usubjid": "CAST(NULL AS VARCHAR)", "lbtestcd": "'***'"})
    result = run("SELECT usubjid, lbtestcd FROM s.lb LIMIT 5", spec)
    assert set(result.column("usubjid").to_pylist()) == {None}
    assert set(result.column("lbtestcd").to_pylist()) == {"***"}
    # a masked column cannot be un-masked by filtering on it
    assert run("SELECT count(*) FROM s.lb WHERE usubjid LIKE 'S-701%'", spec).column(0)[0].as_py() == 0


def test_lockdown_holds_even_without_the_guard(lb_files: list[str], tmp_path: Path) -> None:
    spec = view(lb_files)
    attempts = [
        "SELECT * FROM read_csv('/etc/passwd')",
        "COPY (SELECT 1) TO '" + str(tmp_path / "out.csv") + "'",
        "ATTACH '" + str(tmp_path / "x.duckdb") + "'",
        "SET enable_external_access = true",
        "SET allowed_paths = ['/']",
        "INSTALL httpfs",
        "LOAD httpfs",
    ]
    for sql in attempts:
        with pytest.raises(InvalidInput):
            engine.run(sql, [spec], LIMITS)
    assert not (tmp_path / "out.csv").exists()


def test_conversion_errors_do_not_echo_values(lb_files: list[str]) -> None:
    with pytest.raises(InvalidInput) as error:
        run("SELECT CAST(usubjid AS INTEGER) FROM s.lb", view(lb_files))
    assert "S-7" not in error.value.detail


def test_long_queries_are_stopped(lb_files: list[str]) -> None:
    spec = view(lb_files, row_filter=None)
    limits = engine.EngineLimits(timeout_seconds=0.5, threads=1)
    guarded = check(
        "SELECT count(*) FROM s.lb a, s.lb b, s.lb c, s.lb d WHERE a.lbstresn + b.lbstresn > d.lbstresn"
    )
    with pytest.raises(Unavailable, match="longer than"):
        engine.run(guarded.render({ref: spec.name for ref in guarded.refs}), [spec], limits)


def test_results_are_capped(lb_files: list[str]) -> None:
    spec = view(lb_files, row_filter=None)
    guarded = check("SELECT * FROM s.lb")
    result = engine.run(
        guarded.render({TableRef("s", "lb"): spec.name}), [spec], engine.EngineLimits(max_rows=150)
    )
    assert result.truncated and result.table.num_rows == 150


def test_empty_tables_have_their_columns(tmp_path: Path) -> None:
    schema = pa.schema([("a", pa.int64()), ("b", pa.string())])
    spec = engine.ViewSpec(name="dl_e", files=[], schema=schema, columns={"a": '"a"', "b": '"b"'})
    result = run("SELECT * FROM s.e", spec)
    assert result.num_rows == 0 and result.column_names == ["a", "b"]


def test_metering_counts_only_referenced_columns(lb_files: list[str]) -> None:
    everything = metering.bytes_scanned(lb_files, None)
    some = metering.bytes_scanned(lb_files, {"siteid"})
    footer_total = sum(
        pq.read_metadata(f).row_group(0).column(i).total_compressed_size for f in lb_files for i in range(5)
    )
    assert everything == footer_total
    assert 0 < some < everything


def test_files_proven_by_statistics_give_the_same_rows(tmp_path: Path) -> None:
    """A view over a proven file (read without the filter), a file with NULLs (read with it)
    and a file that holds hidden rows: exactly the visible rows, whichever way each is read."""
    parts = {
        "only-a": {"site": ["A"] * 40, "v": list(range(40))},
        "a-and-null": {"site": ["A", None] * 20, "v": list(range(40, 80))},
        "a-and-b": {"site": ["A", "B"] * 20, "v": list(range(80, 120))},
    }
    files = []
    for name, columns in parts.items():
        path = tmp_path / f"{name}.parquet"
        pq.write_table(pa.table(columns), path, row_group_size=16)
        files.append(str(path))
    schema = pq.read_schema(files[0])
    spec = engine.ViewSpec(
        name="dl_p",
        files=files,
        schema=schema,
        columns={"site": '"site"', "v": '"v"'},
        row_filter="site <> 'B'",
        proven=frozenset(files[:1]),
    )
    expected = [
        v for v in range(120) if (v < 40) or (40 <= v < 80 and v % 2 == 0) or (v >= 80 and v % 2 == 0)
    ]
    got = engine.run('SELECT v FROM "dl_p" ORDER BY v', [spec], LIMITS).table.column(0).to_pylist()
    assert got == expected
    # counts with predicates DuckDB pushes into the Arrow scan stay exact (the row count the
    # source reports is only an estimate for the optimizer)
    counted = engine.run("""SELECT count(*) FROM "dl_p" WHERE site = 'A' AND v > 10""", [spec], LIMITS).table
    assert counted.column(0).to_pylist() == [sum(1 for v in expected if v > 10)]
    dictionary = engine._source(spec, files, filtered=True)[0].schema.field("site").type
    assert pa.types.is_dictionary(dictionary)  # read as Arrow dictionaries, shown as text
    assert (
        engine.run('SELECT typeof(site) FROM "dl_p" LIMIT 1', [spec], LIMITS).table.column(0)[0].as_py()
        == "VARCHAR"
    )


def test_the_watchdog_fires_only_deadlines_not_disarmed() -> None:
    import time

    watchdog, fired = engine.Watchdog(), []
    watchdog.arm(0.2, lambda: fired.append("late"))
    watchdog.disarm(watchdog.arm(0.1, lambda: fired.append("disarmed")))
    for _ in range(200):  # finished queries' deadlines do not pile up
        watchdog.disarm(watchdog.arm(30, lambda: fired.append("never")))
    time.sleep(0.5)
    assert fired == ["late"]
    assert len(watchdog._deadlines) < 64

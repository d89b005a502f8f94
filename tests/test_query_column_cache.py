"""The query engine's column cache: what it holds, when it lets go, and that it never serves
a file that changed or was erased (real Parquet files, real DuckDB, real erasure)."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datalibrary import wiring
from datalibrary.access import service as access
from datalibrary.auth import service as auth_service
from datalibrary.lake.catalog import open_lake
from datalibrary.lake.erasure import erase_subject
from datalibrary.query import engine
from datalibrary.query.column_cache import COLUMNS, MEMORY, ColumnCache
from datalibrary.query.lake_planner import LakePlanner
from datalibrary.query.service import run_query
from tests.helpers import Platform
from tests.lake_helpers import SYSTEM, add_policy, ingest, read_table, write_csv

LIMITS = engine.EngineLimits(memory_limit="256MB", threads=1, timeout_seconds=20, max_rows=10_000)


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    engine.DATABASES.clear()
    COLUMNS.forget()


def _write(path: Path, values: list[float], secret: str = "hidden") -> str:
    table = pa.table(
        {
            "usubjid": [f"S-{i:03d}" for i in range(len(values))],
            "site": ["A" if i % 2 else "B" for i in range(len(values))],
            "v": values,
            "secret": [f"{secret}-{i}" for i in range(len(values))],
        }
    )
    pq.write_table(table, path)
    return str(path)


def _view(files: list[str], row_filter: str | None = None) -> engine.ViewSpec:
    schema = pq.read_schema(files[0])
    columns = {name: engine.quote(name) for name in ("usubjid", "site", "v")}
    return engine.ViewSpec(name="dl_c", files=files, schema=schema, columns=columns, row_filter=row_filter)


def _cached_columns() -> set[str]:
    return {key[1] for key in COLUMNS._entries}


def test_a_query_decodes_only_the_columns_it_reads_and_never_a_hidden_one(tmp_path: Path) -> None:
    files = [_write(tmp_path / "a.parquet", [1.0, 2.0, 3.0])]
    spec = _view(files, row_filter="site = 'A'")
    assert engine.run('SELECT sum(v) FROM "dl_c"', [spec], LIMITS).table.column(0).to_pylist() == [2.0]
    assert _cached_columns() == {"v", "site"}  # the value and the row filter's column
    engine.run('SELECT * FROM "dl_c"', [spec], LIMITS)
    assert _cached_columns() == {"v", "site", "usubjid"}  # "secret" is not in the view: never read


def test_the_second_query_is_served_from_memory(tmp_path: Path) -> None:
    files = [_write(tmp_path / f"{i}.parquet", [float(i)] * 100) for i in range(3)]
    spec = _view(files)
    engine.run('SELECT avg(v) FROM "dl_c"', [spec], LIMITS)
    hits, misses = COLUMNS.hits, COLUMNS.misses
    result = engine.run('SELECT avg(v) FROM "dl_c"', [spec], LIMITS).table.column(0).to_pylist()
    assert result == [1.0]
    assert COLUMNS.misses == misses and COLUMNS.hits == hits + 3  # one column of three files


def test_a_replaced_file_is_never_served_from_the_cache(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    files = [_write(path, [1.0, 2.0])]
    spec = _view(files)
    assert engine.run('SELECT sum(v) FROM "dl_c"', [spec], LIMITS).table.column(0).to_pylist() == [3.0]
    replacement = tmp_path / "new.parquet"
    _write(replacement, [10.0, 20.0])
    os.replace(replacement, path)  # same path, another file
    assert engine.run('SELECT sum(v) FROM "dl_c"', [spec], LIMITS).table.column(0).to_pylist() == [30.0]


def test_the_budget_holds_and_the_least_recently_used_goes_first(tmp_path: Path) -> None:
    cache = ColumnCache(budget=3000, idle_seconds=600)
    schema = pa.schema([pa.field("v", pa.float64())])
    files = [_write(tmp_path / f"{i}.parquet", [float(i)] * 100) for i in range(5)]  # 800 bytes each
    for path in files:
        cache.table([path], schema, [])
        assert cache.held_bytes <= 3000
    assert {key[0] for key in cache._entries} == set(files[-3:])
    assert cache.forget() > 0 and cache.held_bytes == 0


def test_idle_entries_are_dropped(tmp_path: Path) -> None:
    cache = ColumnCache(budget=1 << 20, idle_seconds=0.05)
    schema = pa.schema([pa.field("v", pa.float64())])
    first, second = (_write(tmp_path / f"{i}.parquet", [1.0] * 10) for i in range(2))
    cache.table([first], schema, [])
    time.sleep(0.1)
    cache.table([second], schema, [])
    assert {key[0] for key in cache._entries} == {second}


@pytest.mark.parametrize("budget", [0, 64])
def test_without_room_the_query_streams_and_answers_the_same(tmp_path: Path, budget: int) -> None:
    files = [_write(tmp_path / f"{i}.parquet", [float(j) for j in range(1000)]) for i in range(2)]
    spec = _view(files, row_filter="site = 'A'")
    limits = dataclasses.replace(LIMITS, cache_bytes=budget)
    result = engine.run('SELECT count(*), sum(v) FROM "dl_c" WHERE v > 10', [spec], limits).table
    visible = [j for j in range(1000) if j % 2 and j > 10]  # site 'A' is every odd row
    assert result.to_pylist() == [{"count_star()": 2 * len(visible), "sum(v)": 2.0 * sum(visible)}]
    assert COLUMNS.held_bytes == 0


def test_an_erasure_empties_the_cache_and_says_so(sqlite_platform: Platform, tmp_path: Path) -> None:
    wiring.register_handlers()
    platform = sqlite_platform
    add_policy(platform)
    ingest(platform, write_csv(tmp_path / "a.csv", {"USUBJID": ["S-001", "S-002"], "V": [1, 2]}), "st.lb")
    assert read_table(platform, "st.lb").num_rows == 2
    with platform.db.session() as session:
        auth_service.create_user(session, SYSTEM, "ada", roles={"scientist"}, password="Column-cache-2026!")
        access.add_grant(session, SYSTEM, principal="user:ada", namespace="st", table="lb")
        ada = auth_service.principal_for(auth_service.get_user(session, "ada"))
        run_query(session, ada, "SELECT usubjid FROM st.lb", planner=LakePlanner(platform.settings),
                  limits=platform.settings.query.limits(), settings=platform.settings)  # fmt: skip
    assert "USUBJID" in _cached_columns()
    with platform.db.session() as session:
        erased = erase_subject(session, SYSTEM, open_lake(platform.settings), namespace="st", subject="S-001")
    assert erased["ok"]
    assert COLUMNS.held_bytes == 0
    assert [item["action"] for item in erased["copies"][MEMORY]] == ["cleared"]

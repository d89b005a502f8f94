"""Attacks on the query engine's column cache: it must never change who sees what. Two
callers with different grants on the same files, a file rewritten in place, a schema that
changed under the same paths, dictionary and plain columns mixed (real Parquet, real DuckDB)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datalibrary.query import engine
from datalibrary.query.column_cache import COLUMNS

LIMITS = engine.EngineLimits(memory_limit="256MB", threads=1, timeout_seconds=20, max_rows=10_000)


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    engine.DATABASES.clear()
    COLUMNS.forget()


def _write(path: Path, values: list[float], secret: str = "hidden", **options: object) -> str:
    n = len(values)
    table = pa.table(
        {
            "usubjid": [f"S-{i:03d}" for i in range(n)],
            "site": [None if i % 3 == 0 else ("A" if i % 2 else "B") for i in range(n)],
            "v": values,
            "secret": [f"{secret}-{i}" for i in range(n)],
        }
    )
    pq.write_table(table, path, **options)  # type: ignore[arg-type]
    return str(path)


def _spec(name: str, files: list[str], columns: dict[str, str], row_filter: str | None = None,
          schema: pa.Schema | None = None) -> engine.ViewSpec:  # fmt: skip
    return engine.ViewSpec(
        name=name,
        files=files,
        schema=schema or pq.read_schema(files[0]),
        columns=columns,
        row_filter=row_filter,
    )


def _rows(sql: str, spec: engine.ViewSpec) -> list[dict[str, object]]:
    return engine.run(sql, [spec], LIMITS).table.to_pylist()


def test_two_grants_on_the_same_files_never_see_each_others_columns_or_rows(tmp_path: Path) -> None:
    files = [_write(tmp_path / f"{i}.parquet", [float(100 * i + j) for j in range(12)]) for i in range(3)]
    # A: everything but the secret, no filter. B: v masked to its hundreds, only site 'A' (NULL: hidden)
    a = _spec("dl_a", files, {n: engine.quote(n) for n in ("usubjid", "site", "v", "secret")})
    b = _spec("dl_b", files, {"v": 'floor("v" / 100) * 100'}, row_filter="site = 'A'")
    visible_b = sorted(float(100 * i) for i in range(3) for j in range(12) if j % 3 != 0 and j % 2)
    errors: list[str] = []

    def check_b() -> None:
        rows = _rows('SELECT * FROM "dl_b" ORDER BY v', b)
        if any(set(r) != {"v"} for r in rows) or sorted(r["v"] for r in rows) != visible_b:
            errors.append(f"B saw {rows[:3]}")

    def check_a() -> None:
        rows = _rows('SELECT * FROM "dl_a"', a)
        if len(rows) != 36 or rows[0]["secret"] is None:
            errors.append("A's answer changed")

    for _ in range(3):  # alternately: whoever decoded first, the other's answer is its own
        check_a()
        check_b()
    COLUMNS.forget()
    check_b()  # B first this time: its columns cached, then A
    check_a()
    threads = [threading.Thread(target=f) for f in (check_a, check_b) * 6]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # B cannot name A's columns even with them in the cache
    with pytest.raises(Exception, match="usubjid|secret"):
        engine.run('SELECT usubjid, secret FROM "dl_b"', [b], LIMITS)


def test_a_file_rewritten_in_place_with_its_old_mtime_is_not_served(tmp_path: Path) -> None:
    """Same path, same inode, modification time set back: a stale column must not come back."""
    path = tmp_path / "a.parquet"
    files = [_write(path, [1.0, 2.0])]
    spec = _spec("dl_c", files, {"v": '"v"'})
    assert _rows('SELECT sum(v) AS s FROM "dl_c"', spec) == [{"s": 3.0}]
    before = os.stat(path)
    rewritten = tmp_path / "b.parquet"
    _write(rewritten, [10.0, 20.0])
    with open(path, "r+b") as target:  # in place: the inode stays
        data = rewritten.read_bytes()
        target.seek(0)
        target.write(data)
        target.truncate(len(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert _rows('SELECT sum(v) AS s FROM "dl_c"', spec) == [{"s": 30.0}]


def test_a_schema_change_under_the_same_paths_never_serves_the_old_decoding(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"k": pa.array([1, 2], pa.int32()), "v": pa.array([5, 7], pa.int32())}), path)
    old = _spec("dl_old", [str(path)], {"v": '"v"'})
    assert _rows('SELECT sum(v) AS s FROM "dl_old"', old) == [{"s": 12}]
    # type widened in a later snapshot: same file, other Arrow type, another cache entry
    wide = pa.schema([pa.field("k", pa.int32()), pa.field("v", pa.int64())])
    new = _spec("dl_new", [str(path)], {"v": '"v"'}, schema=wide)
    result = engine.run('SELECT v FROM "dl_new"', [new], LIMITS).table
    assert result.schema.field("v").type == pa.int64() and result.column(0).to_pylist() == [5, 7]
    # a column added later reads as NULL in the old file, never as another column's values
    added = pa.schema([pa.field("k", pa.int32()), pa.field("w", pa.int32())])
    spec = _spec("dl_added", [str(path)], {"w": '"w"'}, schema=added)
    assert _rows('SELECT w FROM "dl_added"', spec) == [{"w": None}, {"w": None}]


def test_dictionary_and_plain_files_mixed_answer_the_same_cached_or_not(tmp_path: Path) -> None:
    dictionary = _write(tmp_path / "d.parquet", [1.0] * 12, use_dictionary=True)
    plain = _write(tmp_path / "p.parquet", [2.0] * 12, use_dictionary=False)
    spec = _spec("dl_m", [dictionary, plain], {"site": '"site"', "v": '"v"'}, row_filter="site = 'A'")
    sql = 'SELECT site, count(*) AS n, sum(v) AS s FROM "dl_m" GROUP BY site'
    first = _rows(sql, spec)
    second = _rows(sql, spec)  # from the cache
    assert first == second == [{"site": "A", "n": 8, "s": 12.0}]


@pytest.mark.parametrize("budget", [1 << 30, 0])
def test_columns_that_differ_only_by_case_never_show_the_hidden_one(tmp_path: Path, budget: int) -> None:
    """DuckDB binds identifiers without regard to case: a view showing "v" over a table that
    also has a hidden "V" showed the hidden one (cached or streamed). Such a table is refused."""
    import dataclasses

    from datalibrary.errors import InvalidInput

    path = tmp_path / "case.parquet"
    pq.write_table(pa.table({"V": ["hidden-1", "hidden-2"], "v": ["ok-1", "ok-2"]}), path)
    spec = _spec("dl_x", [str(path)], {"v": '"v"'})
    limits = dataclasses.replace(LIMITS, cache_bytes=budget)
    try:
        rows = engine.run('SELECT * FROM "dl_x"', [spec], limits).table.to_pylist()
    except InvalidInput as exc:
        assert "case" in exc.detail
        rows = []
    assert all(not str(r["v"]).startswith("hidden") for r in rows), rows
    assert "V" not in {key[1] for key in COLUMNS._entries}

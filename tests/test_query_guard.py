"""The SQL guard refuses everything but read queries over catalog tables."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datalibrary.errors import InvalidInput
from datalibrary.query.guard import TableRef, check

REFUSED = [
    "",
    "   ;  ",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_parquet('/srv/lake/x.parquet')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM 'data.parquet'",
    "SELECT * FROM glob('/**')",
    "SELECT * FROM read_text('/etc/shadow')",
    "SELECT * FROM parquet_metadata('x')",
    "SELECT * FROM sniff_csv('x')",
    "COPY (SELECT 1) TO '/tmp/out.csv'",
    "COPY cdisc.lb TO '/tmp/out.parquet'",
    "ATTACH '/tmp/other.duckdb' AS other",
    "DETACH other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "RESET lock_configuration",
    "PRAGMA database_list",
    "CALL pragma_version()",
    "SELECT 1; SELECT 2",
    "SELECT 1; DROP TABLE cdisc.lb",
    "CREATE TABLE x AS SELECT 1",
    "CREATE MACRO m(a) AS a",
    "INSERT INTO cdisc.lb VALUES (1)",
    "UPDATE cdisc.lb SET x = 1",
    "DELETE FROM cdisc.lb",
    "EXPORT DATABASE '/tmp/x'",
    "EXPLAIN ANALYZE SELECT 1",
    "SELECT getenv('HOME')",
    "SELECT current_setting('memory_limit')",
    "SELECT * FROM duckdb_tables()",
    "SELECT * FROM duckdb_columns()",
    "SELECT * FROM information_schema.columns",
    "SELECT * FROM pg_catalog.pg_tables",
    "SELECT * FROM main.some_view",
    "SELECT * FROM query('SELECT 1')",
    "SELECT * FROM query_table('x')",
    "SELECT error('boom')",
    "SELECT * FROM lb",  # unqualified: not a catalog table
    "SELECT * FROM a.b.c",
    "SELECT * FROM cdisc.lb FOR VERSION AS OF 'abc'",
    'SELECT * FROM "cdisc"."l b"',
    "SELECT 1 /* comment */; ATTACH 'x'",
    "SELECT * FROM cdisc.lb -- ok\n; COPY cdisc.lb TO 'x'",
    "SELECT 'a\x00b'",
    "SELECT " + "(" * 400 + "1" + ")" * 400,
    "SELECT " + "1 + " * 30_000 + "1",
    "USE other",
    "BEGIN TRANSACTION",
    "VACUUM",
    "CHECKPOINT",
    "SUMMARIZE cdisc.lb",
    "DESCRIBE cdisc.lb",
]


@pytest.mark.parametrize("sql", REFUSED, ids=range(len(REFUSED)))
def test_refused(sql: str) -> None:
    with pytest.raises(InvalidInput) as error:
        check(sql)
    assert error.value.detail.startswith("query refused:")


def test_read_queries_are_accepted_and_rewritten() -> None:
    guarded = check(
        "WITH x AS (SELECT * FROM cdisc.lb WHERE siteid = '701') "
        "SELECT visitnum, count(*) FROM x JOIN cdisc.dm AS d ON x.usubjid = d.usubjid GROUP BY 1"
    )
    assert set(guarded.refs) == {TableRef("cdisc", "lb"), TableRef("cdisc", "dm")}
    sql = guarded.render({TableRef("cdisc", "lb"): "v_lb", TableRef("cdisc", "dm"): "v_dm"})
    assert '"v_lb" AS lb' in sql and '"v_dm" AS d' in sql
    assert "cdisc" not in sql


def test_comments_never_reach_the_engine() -> None:
    guarded = check("SELECT /* hint */ a FROM s.t -- trailing")
    assert "hint" not in guarded.render({TableRef("s", "t"): "v"})


def test_time_travel_and_explain() -> None:
    guarded = check("EXPLAIN SELECT a FROM s.t FOR VERSION AS OF 42 UNION ALL SELECT a FROM s.t")
    assert guarded.explain
    assert TableRef("s", "t", snapshot_id=42) in guarded.refs and TableRef("s", "t") in guarded.refs
    rendered = guarded.render({TableRef("s", "t", snapshot_id=42): "old", TableRef("s", "t"): "new"})
    assert rendered.startswith("EXPLAIN SELECT")
    assert check("SELECT * FROM s.t FOR TIMESTAMP AS OF '2024-01-01T00:00:00'").refs[0].as_of


def test_unicode_lookalike_names_do_not_resolve() -> None:
    # Cyrillic 'с' in the namespace: refused as an invalid name rather than matched
    with pytest.raises(InvalidInput):
        check('SELECT * FROM "\u0441disc".lb')


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes_the_guard(text: str) -> None:
    try:
        guarded = check(text)
    except InvalidInput:
        return
    for ref in guarded.refs:
        assert ref.namespace and ref.table


def test_render_reparses_unless_only_the_table_names_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    """``check`` had DuckDB's parser read the SQL with placeholder names; ``render`` skips a
    second parse only when the SQL differs from it by those names alone."""
    from datalibrary.query import duckdb_parse

    real = duckdb_parse.check_sql
    parsed: list[str] = []

    def counting(sql: str, tables: set[str]) -> set[str]:
        parsed.append(sql)
        return real(sql, tables)

    monkeypatch.setattr(duckdb_parse, "check_sql", counting)
    guarded = check("SELECT l.a, count(*) FROM cdisc.lb l JOIN cdisc.dm d ON l.a = d.a GROUP BY 1")
    views = {ref: f"dl_view{i}" for i, ref in enumerate(guarded.refs)}
    sql = guarded.render(views)
    assert len(parsed) == 1 and '"dl_view0"' in sql and '"dl_view1"' in sql
    # A placeholder's text inside a literal: the swap would change the literal, so DuckDB reads
    # the real SQL again (and the literal is kept as written).
    parsed.clear()
    guarded = check("""SELECT '"dl_check_0"' AS x FROM cdisc.lb""")
    sql = guarded.render({guarded.refs[0]: "dl_view0"})
    assert len(parsed) == 2 and """'"dl_check_0"'""" in sql
    # A view name that is not a plain identifier, or that collides with a placeholder: parsed again.
    for number, name in enumerate(("dl_check_0", 'x" y')):
        parsed.clear()
        guarded = check(f"SELECT {number} FROM cdisc.lb")
        guarded.render({guarded.refs[0]: name})
        assert len(parsed) == 2


def test_accepted_queries_are_checked_once_and_refusals_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from datalibrary.query import duckdb_parse

    real, parsed = duckdb_parse.check_sql, []
    monkeypatch.setattr(duckdb_parse, "check_sql", lambda sql, names: parsed.append(sql) or real(sql, names))
    first = check("SELECT count(*) AS accepted_once FROM cdisc.lb")
    assert check("SELECT count(*) AS accepted_once FROM cdisc.lb") is first and len(parsed) == 1
    for _ in range(2):
        with pytest.raises(InvalidInput):
            check("SELECT version() AS refused_twice FROM cdisc.lb")
    assert len(parsed) == 3

"""Escape attempts of a caller with a restricted grant (issue #12), each reproduced as found:
scope confusion (CTE names binding to system views or quoted file paths), table functions
under LATERAL, forbidden functions under other names, pruning as an oracle on hidden values,
refusals and crashes without a record."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from datalibrary.audit.models import AuditEvent
from datalibrary.errors import InvalidInput
from datalibrary.lineage.models import LineageEdge
from datalibrary.query import engine, guard
from datalibrary.query.models import QueryRecord
from tests.helpers import Platform
from tests.lake_helpers import add_policy, ingest, write_csv
from tests.security_helpers import HIDDEN_MARK, make_rows, run_as_caller, view_for, write_files

SCOPE_ESCAPES = [
    "SELECT sql FROM duckdb_views, (WITH duckdb_views AS (SELECT 1) SELECT 1) s",
    "SELECT * FROM pg_settings, (WITH pg_settings AS (SELECT 1) SELECT 1) s",
    "SELECT * FROM sqlite_master, (WITH sqlite_master AS (SELECT 1) SELECT 1) s",
    "SELECT * FROM duckdb_settings, (SELECT * FROM (WITH duckdb_settings AS (SELECT 1) SELECT 1)) s",
    "SELECT * FROM (WITH information_schema AS (SELECT 1) SELECT 1) s, information_schema.tables",
    "WITH a AS (SELECT * FROM duckdb_views) SELECT * FROM a",
    "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a",  # forward reference
    "SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) UNION ALL SELECT * FROM x",
    "SELECT (WITH x AS (SELECT 1) SELECT 1), * FROM x",
    "WITH RECURSIVE r AS (SELECT 1 UNION ALL SELECT 1 FROM r) SELECT * FROM (SELECT * FROM r) q, r2",
    "SELECT * FROM dl_src_0123456789abcdef01234567",
    "SELECT * FROM dl_cte_1",
    "SELECT * FROM temp.main.duckdb_views",
]
FILE_ESCAPES = [
    'WITH "{f}" AS (SELECT * FROM "{f}") SELECT * FROM "{f}"',
    "WITH \"{f}\" AS (SELECT 1) SELECT * FROM s.t, (SELECT * FROM '{f}') x",
    'SELECT * FROM (WITH "{f}" AS (SELECT 1) SELECT 1) a, "{f}"',
    "SELECT * FROM '{f}'",
    "SELECT * FROM read_parquet('{f}')",
    "SELECT * FROM parquet_scan(['{f}'])",
]
TABLE_FUNCTIONS = [
    "SELECT * FROM s.t, LATERAL json_each('[1]') j",
    "SELECT * FROM s.t, LATERAL icu_calendar_names() j",
    "SELECT * FROM s.t, LATERAL range(3) r",
    "SELECT * FROM s.t, LATERAL generate_series(1, 3) g",
    "SELECT * FROM s.t CROSS JOIN LATERAL unnest([1, 2]) u",
    "SELECT * FROM s.t, LATERAL (SELECT * FROM duckdb_settings()) x",
    "SELECT * FROM s.t, LATERAL read_csv('/etc/passwd') x",
    "SELECT * FROM unnest([1, 2])",
    "SELECT * FROM duckdb_functions()",
]
FUNCTIONS = [
    "SELECT version()",
    "SELECT pg_typeof(1)",
    "SELECT current_setting('memory_limit')",
    "SELECT getvariable('x')",
    "SELECT current_query()",
    "SELECT txid_current()",
    "SELECT nextval('s')",
    "SELECT json_serialize_plan('SELECT 1')",
    "SELECT stats(pid) FROM s.t",
    "SELECT main.lower('x')",
    "SELECT pid FROM s.t WHERE has_table_privilege('x', 'select')",
]


@pytest.fixture
def restricted(tmp_path: Path) -> tuple[list[str], engine.ViewSpec]:
    files = write_files(make_rows(40, 7), tmp_path / "data", 2)
    return files, view_for(files, "site = 'A'")


@pytest.mark.parametrize("sql", SCOPE_ESCAPES + TABLE_FUNCTIONS + FUNCTIONS)
def test_escapes_are_refused(sql: str) -> None:
    with pytest.raises(InvalidInput) as error:
        guard.check(sql)
    assert error.value.detail.startswith("query refused:")


def _reads_nothing_hidden(run) -> None:  # type: ignore[no-untyped-def]
    """Refused, or (a quoted name bound to a CTE in scope) nothing of the file came back."""
    try:
        table = run()
    except InvalidInput:
        return
    assert "score" not in [c.lower() for c in table.column_names]
    assert HIDDEN_MARK not in str(table.to_pylist())
    assert not set(table.to_pydict().get("site", [])) - {"A"}


@pytest.mark.parametrize("template", FILE_ESCAPES)
def test_quoted_file_paths_read_nothing(template: str, restricted) -> None:
    files, view = restricted
    _reads_nothing_hidden(lambda: run_as_caller(template.format(f=files[0]), view))


@pytest.mark.parametrize("template", FILE_ESCAPES)
def test_the_engine_alone_reads_no_file(template: str, restricted) -> None:
    """Second wall: SQL that skipped the guard still finds no file to read."""
    files, view = restricted
    sql = template.format(f=files[0]).replace("s.t", engine.quote(view.name))
    _reads_nothing_hidden(lambda: engine.run(sql, [view], engine.EngineLimits()).table)


def test_the_engine_alone_has_no_hidden_column(restricted) -> None:
    """The raw source registered for a view holds only the columns the view needs: a hidden
    column no filter uses is not in the database at all."""
    _, view = restricted
    sql = "SELECT view_name FROM duckdb_views() WHERE view_name LIKE 'dl_src_%'"
    names = engine.run(sql, [view], engine.EngineLimits()).table.column(0).to_pylist()
    assert names
    for name in names:
        result = engine.run(f"SELECT * FROM {engine.quote(name)}", [view], engine.EngineLimits()).table
        assert "score" not in result.column_names and "name" not in result.column_names


def test_rendered_sql_names_nothing_but_views_and_fresh_ctes() -> None:
    guarded = guard.check(
        "WITH lb AS (SELECT * FROM s.t) SELECT * FROM lb, (WITH lb AS (SELECT 1) SELECT 1) q"
    )
    rendered = guarded.render({guard.TableRef("s", "t"): "dl_view"})
    assert '"dl_cte_1"' in rendered and '"dl_cte_2"' in rendered and "FROM lb" not in rendered


def test_masked_values_never_come_back_through_any_function(restricted) -> None:
    _, view = restricted
    for sql in [
        "SELECT to_json(t) FROM s.t",
        "SELECT list(name) FROM s.t",
        "SELECT struct_pack(n := name) FROM s.t",
    ]:
        table = run_as_caller(sql, view)
        assert HIDDEN_MARK not in str(table.to_pylist()), sql


# --- end to end over the lake ---------------------------------------------------------


@pytest.fixture
def scores(platform: Platform, tmp_path: Path) -> Platform:
    """cdisc.sc in four files with disjoint SCORE ranges, so statistics could tell them apart."""
    add_policy(platform)
    for part in range(4):
        write_csv(
            tmp_path / f"sc{part}.csv",
            {
                "PID": [f"p{part}{i}" for i in range(5)],
                "SITE": ["A" if i % 2 else "B" for i in range(5)],
                "SCORE": [part * 100 + i for i in range(5)],
            },
        )
        assert ingest(platform, tmp_path / f"sc{part}.csv", "cdisc.sc")[1] == "succeeded"
    platform.add_user("stew", "steward")
    platform.add_user("ada", "scientist")
    return platform


def _grant(platform: Platform, **body) -> None:
    response = platform.as_user("stew").post(
        "/api/v1/grants", json={"principal": "user:ada", "table": "cdisc.sc"} | body
    )
    assert response.status_code == 201, response.text


def _estimate(platform: Platform, sql: str) -> int:
    response = platform.as_user("ada").post("/api/v1/query/estimate", json={"sql": sql})
    assert response.status_code == 200, response.text
    return response.json()["bytes_scanned"]


@pytest.mark.parametrize(
    "grant",
    [
        {"columns": ["pid", "site"]},  # SCORE hidden
        {"masks": {"score": "null"}},  # SCORE masked
        {"row_filter": "site = 'A'"},  # SCORE visible, but files also hold hidden rows
    ],
    ids=["hidden", "masked", "row_filter"],
)
def test_pruning_is_no_oracle(scores: Platform, grant: dict) -> None:
    _grant(scores, **grant)
    plain = _estimate(scores, "SELECT pid FROM cdisc.sc WHERE pid = 'p01' AND score > -1000")
    for threshold in (-1, 150, 250, 10_000):
        probe = f"SELECT pid FROM cdisc.sc WHERE pid = 'p01' AND score > {threshold}"
        assert _estimate(scores, probe) == plain, probe
    ran = scores.as_user("ada").post(
        "/api/v1/query", json={"sql": "SELECT pid FROM cdisc.sc WHERE pid = 'p01' AND score > 10000"}
    )
    if ran.status_code == 200:
        assert ran.json()["stats"]["bytes_scanned"] == plain


def test_pruning_still_works_on_visible_columns(scores: Platform) -> None:
    _grant(scores)
    everything = _estimate(scores, "SELECT pid FROM cdisc.sc WHERE score > -1000")
    assert 0 < _estimate(scores, "SELECT pid FROM cdisc.sc WHERE score > 250") < everything / 2


def test_with_a_row_filter_only_files_of_visible_rows_alone_are_pruned(
    platform: Platform, tmp_path: Path
) -> None:
    """Files holding visible rows alone are pruned by the query's own predicate (their
    statistics describe visible rows only); a file that also holds hidden rows is read whole
    whatever the query. Differential proof: two tables that differ only in one hidden value
    give the same bytes scanned for every probe."""
    add_policy(platform)
    for table, hidden in [("sc", 900), ("sd", 50)]:
        for name, sites, scores in [
            ("a1", ["A", "A"], [1, 2]),
            ("a2", ["A", "A"], [301, 302]),
            ("mixed", ["A", "B"], [3, hidden]),
        ]:
            rows = {"PID": [f"{name}-{i}" for i in range(2)], "SITE": sites, "SCORE": scores}
            path = write_csv(tmp_path / f"{table}{name}.csv", rows)
            assert ingest(platform, path, f"cdisc.{table}")[1] == "succeeded"
    platform.add_user("stew", "steward")
    platform.add_user("ada", "scientist")
    for table in ("sc", "sd"):
        _grant(platform, table=f"cdisc.{table}", row_filter="site = 'A'")
    everything = _estimate(platform, "SELECT pid FROM cdisc.sc WHERE score > -1")
    assert 0 < _estimate(platform, "SELECT pid FROM cdisc.sc WHERE score < 100") < everything
    for predicate in ("score > -1", "score > 40", "score > 60", "score < 100", "score > 899", "score = 900",
                      "score BETWEEN 40 AND 60", "score > 10000"):  # fmt: skip
        one = _estimate(platform, f"SELECT pid FROM cdisc.sc WHERE {predicate}")
        other = _estimate(platform, f"SELECT pid FROM cdisc.sd WHERE {predicate}")
        assert one == other, f"bytes scanned reveal the hidden value through '{predicate}'"
    ran = platform.as_user("ada").post(
        "/api/v1/query", json={"sql": "SELECT pid FROM cdisc.sc WHERE score < 100 ORDER BY 1"}
    )
    assert ran.status_code == 200, ran.text
    assert [r[0] for r in ran.json()["rows"]] == ["a1-0", "a1-1", "mixed-0"]


def test_scope_escapes_through_the_api_are_refused_and_recorded(scores: Platform) -> None:
    _grant(scores, columns=["pid", "site"], row_filter="site = 'A'")
    ada = scores.as_user("ada")
    planned = scores.app.state.planner.plan("cdisc", "sc")
    path = planned.files[0]
    attacks = [
        "SELECT sql FROM duckdb_views, (WITH duckdb_views AS (SELECT 1) SELECT 1) s",
        f'WITH "{path}" AS (SELECT * FROM "{path}") SELECT * FROM "{path}"',
        "SELECT * FROM cdisc.sc, LATERAL json_each('[1]') j",
    ]
    for sql in attacks:
        response = ada.post("/api/v1/query", json={"sql": sql})
        assert response.status_code == 422, response.text
        assert "score" not in response.text.lower()
    with scores.db.session() as session:
        records = session.scalars(select(QueryRecord).order_by(QueryRecord.id)).all()
        assert [r.outcome for r in records] == ["failure"] * 3
        assert records[2].tables == [{"name": "cdisc.sc", "snapshot_id": None, "refused": True}]
        edges = session.scalars(
            select(LineageEdge).where(LineageEdge.dataset_name == "cdisc.sc", LineageEdge.user == "ada")
        ).all()
        assert {e.event_type for e in edges} == {"START", "FAIL"}
        audits = session.scalars(select(AuditEvent).where(AuditEvent.action == "query.run")).all()
        assert len(audits) == 3 and all(a.outcome == "failure" for a in audits)


class _BrokenPlanner:
    """A planner whose storage fails mid-query (fault injection: no real part fails on cue)."""

    def plan(self, *args, **kwargs):
        raise RuntimeError("disk on fire /secret/path")


def test_a_crash_is_a_500_problem_with_a_request_id_and_is_recorded(scores: Platform) -> None:
    _grant(scores)
    real = scores.app.state.planner
    scores.app.state.planner = _BrokenPlanner()
    try:
        response = scores.as_user("ada").post("/api/v1/query", json={"sql": "SELECT pid FROM cdisc.sc"})
    finally:
        scores.app.state.planner = real
    assert response.status_code == 500
    body = response.json()
    assert body["request_id"] and "secret" not in response.text and "Traceback" not in response.text
    with scores.db.session() as session:
        record = session.scalars(select(QueryRecord)).one()
        assert record.outcome == "failure" and record.tables[0]["name"] == "cdisc.sc"
        assert body["request_id"] in record.error and "fire" not in record.error
        audit = session.scalars(select(AuditEvent).where(AuditEvent.action == "query.run")).one()
        assert audit.outcome == "failure"


def test_catalog_shows_nothing_without_a_grant_and_no_statistics_of_hidden_columns(scores: Platform) -> None:
    ada = scores.as_user("ada")
    hidden, missing = ada.get("/api/v1/datasets/cdisc/sc"), ada.get("/api/v1/datasets/cdisc/nope")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace("cdisc.sc", "X") == missing.json()["detail"].replace(
        "cdisc.nope", "X"
    )
    assert "cdisc.sc" not in [d["name"] for d in ada.get("/api/v1/datasets").json()]
    _grant(scores, columns=["pid", "site"], masks={"site": "null"})
    assert "cdisc.sc" in [d["name"] for d in ada.get("/api/v1/datasets").json()]
    detail = ada.get("/api/v1/datasets/cdisc/sc").json()
    assert [c["name"].lower() for c in detail["columns"]] == ["pid", "site"]
    assert [c["name"].lower() for c in detail["profile"]] == ["pid"]
    steward = scores.as_user("stew").get("/api/v1/datasets/cdisc/sc").json()
    assert {c["name"].lower() for c in steward["profile"]} == {"pid", "site", "score"}


def test_a_query_cannot_exceed_its_memory_cap(restricted) -> None:
    from datalibrary.errors import Unavailable

    _, view = restricted
    guarded = guard.check("SELECT string_agg(repeat(a.pid, 20000), ',') FROM s.t a, s.t b, s.t c")
    limits = engine.EngineLimits(memory_limit="64MB", threads=1, timeout_seconds=60)
    with pytest.raises(Unavailable, match="memory"):
        engine.run(guarded.render({ref: view.name for ref in guarded.refs}), [view], limits)


def test_csv_results_neutralize_formulas_and_stream(scores: Platform) -> None:
    _grant(scores)
    # a public table downloads directly; others go to the airlock (tests/test_download_policy.py)
    public = scores.as_user("admin").request(
        "PATCH", "/api/v1/datasets/cdisc/sc", json={"sensitivity": "public"}
    )
    assert public.status_code == 200, public.text
    sql = "SELECT '=HYPERLINK(\"http://x\")' AS \"=cmd\", '-2+3' AS b, pid, -5 AS n FROM cdisc.sc LIMIT 2"
    response = scores.as_user("ada").post("/api/v1/query", json={"sql": sql, "format": "csv"})
    assert response.status_code == 200, response.text
    lines = response.text.splitlines()
    assert lines[0].startswith('"\'=cmd"')
    assert "\"'=HYPERLINK" in lines[1] and '"\'-2+3"' in lines[1] and lines[1].endswith(",-5")
    assert int(response.headers["Content-Length"]) == len(response.content)


def test_errors_raised_while_results_stream_do_not_echo_values(restricted) -> None:
    _, view = restricted
    with pytest.raises(InvalidInput) as error:
        run_as_caller("SELECT ROW(1, 'x') UNION ALL SELECT '{'': 42,'': secretvalue}'", view)
    assert "secretvalue" not in error.value.detail

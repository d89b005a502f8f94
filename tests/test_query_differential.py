"""Differential security suite: for grant shapes (column subset, mask, row filters built from
=, <>, IN, NOT IN, IS NULL, LIKE, ranges, dates, with AND/OR/NOT, on columns with NULLs) and
SQL shapes (subquery, join, CTE at several depths, set operations, window, lateral, EXISTS,
aggregates), what a restricted caller gets equals a reference computed in Python from the raw
rows. Hypothesis draws the data and the filters."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from datalibrary.errors import InvalidInput
from tests.security_helpers import (
    HIDDEN_MARK,
    Filter,
    combine,
    leaves,
    make_rows,
    run_as_caller,
    view_for,
    visible,
    write_files,
)

# Shapes that must return exactly the visible pids.
EXACT = {
    "plain": "SELECT pid FROM s.t",
    "subquery": "SELECT pid FROM (SELECT * FROM s.t) q",
    "cte": "WITH a AS (SELECT * FROM s.t) SELECT pid FROM a",
    "cte_nested": "WITH a AS (WITH b AS (SELECT * FROM s.t) SELECT * FROM b) "
    "SELECT pid FROM (WITH c AS (SELECT * FROM a) SELECT * FROM c)",
    "cte_shadow": "WITH t AS (SELECT * FROM s.t WHERE 1 = 1) SELECT pid FROM t",
    "join": "SELECT a.pid FROM s.t a JOIN s.t b ON a.pid = b.pid",
    "left_join": "SELECT a.pid FROM s.t a LEFT JOIN (SELECT 1 AS x) b ON TRUE",
    "union": "SELECT pid FROM s.t UNION SELECT pid FROM s.t",
    "union_all_distinct": "SELECT DISTINCT pid FROM (SELECT pid FROM s.t UNION ALL SELECT pid FROM s.t)",
    "intersect": "SELECT pid FROM s.t INTERSECT SELECT pid FROM s.t",
    "except": "SELECT pid FROM s.t EXCEPT SELECT pid FROM s.t WHERE false",
    "window": "SELECT pid FROM (SELECT pid, row_number() OVER (PARTITION BY site ORDER BY age) r FROM s.t)",
    "lateral": "SELECT x.pid FROM s.t, LATERAL (SELECT t.pid) x",
    "exists": "SELECT pid FROM s.t WHERE EXISTS (SELECT 1 FROM s.t u WHERE u.pid = t.pid)",
    "or_true": "SELECT pid FROM s.t WHERE site IS NULL OR 1 = 1",
    "in_sub": "SELECT pid FROM s.t WHERE pid IN (SELECT pid FROM s.t)",
    "recursive": "WITH RECURSIVE r(pid, n) AS (SELECT pid, 1 FROM s.t UNION ALL "
    "SELECT pid, n + 1 FROM r WHERE n < 2) SELECT DISTINCT pid FROM r",
    "qualify": "SELECT pid FROM s.t QUALIFY count(*) OVER () > 0",
    "from_first": "FROM s.t SELECT pid",
}


def _filters() -> st.SearchStrategy[Filter]:
    base = st.sampled_from([Filter(leaf.sql, leaf.value) for leaf in leaves()])
    return st.recursive(
        base,
        lambda inner: st.one_of(
            inner.map(lambda f: combine("not", f)),
            st.tuples(st.sampled_from(["and", "or"]), inner, inner).map(lambda t: combine(t[0], t[1], t[2])),
        ),
        max_leaves=4,
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(row_filter=st.one_of(st.none(), _filters()), seed=st.integers(0, 10_000), parts=st.integers(1, 3))
def test_every_shape_returns_exactly_the_visible_rows(
    row_filter: Filter | None, seed: int, parts: int
) -> None:
    rows = make_rows(60, seed)
    with tempfile.TemporaryDirectory() as directory:
        files = write_files(rows, Path(directory), parts)
        view = view_for(files, row_filter.sql if row_filter else None)
        expected = sorted(r["pid"] for r in visible(rows, row_filter.value if row_filter else None))
        for name, sql in EXACT.items():
            got = sorted(run_as_caller(sql, view).column(0).to_pylist())
            assert got == expected, (name, row_filter.sql if row_filter else None)
        aggregates = run_as_caller("SELECT count(*), max(age), count(site) FROM s.t", view).to_pylist()[0]
        shown = visible(rows, row_filter.value if row_filter else None)
        ages = [r["age"] for r in shown if r["age"] is not None]
        assert list(aggregates.values()) == [
            len(shown),
            max(ages) if ages else None,
            sum(r["site"] is not None for r in shown),
        ]
        masked = run_as_caller("SELECT name AS n2, t.* FROM s.t", view)
        assert masked.num_rows == len(shown), "every visible row comes back, masked"
        assert set(masked.column("name").to_pylist()) | set(masked.column("n2").to_pylist()) <= {None}
        assert "score" not in masked.column_names
        assert not any(HIDDEN_MARK in str(v) for col in masked.columns for v in col.to_pylist())


HIDDEN_SHAPES = [
    "SELECT score FROM s.t",
    "SELECT t.score FROM s.t",
    "SELECT pid FROM s.t WHERE score > 50",
    "WITH a AS (SELECT * FROM s.t) SELECT score FROM a",
    "SELECT max(score) FROM s.t",
    "SELECT pid FROM s.t ORDER BY score",
]


@pytest.mark.parametrize("sql", HIDDEN_SHAPES)
def test_hidden_columns_cannot_be_named_in_any_shape(tmp_path: Path, sql: str) -> None:
    files = write_files(make_rows(20, 1), tmp_path, 2)
    with pytest.raises(InvalidInput):
        run_as_caller(sql, view_for(files, "site = 'A'"))


def test_masked_column_cannot_be_probed(tmp_path: Path) -> None:
    files = write_files(make_rows(50, 2), tmp_path, 2)
    view = view_for(files, None)
    for sql in [
        f"SELECT count(*) FROM s.t WHERE name LIKE '{HIDDEN_MARK}%'",
        "SELECT count(*) FROM s.t WHERE name IS NOT NULL",
        "SELECT count(DISTINCT name) FROM s.t",
    ]:
        assert run_as_caller(sql, view).column(0)[0].as_py() == 0, sql

"""Is a query's result an aggregate, and how many records are behind each of its cells?

A result counts as *aggregate* only when its top-level SELECT groups rows and every output
column is a group key or a safe statistic of the group (COUNT, SUM, AVG, standard deviation,
variance, median). MIN, MAX, FIRST, LIST, STRING_AGG, window functions, DISTINCT or set
operations can reveal single records, so such results are treated as row-level.

For an aggregate, :func:`cell_count_query` returns the same query with ``COUNT(*)`` appended
to its projection: run with the same grants, it gives the number of records behind every
cell, which the risk module checks against the minimum class size (smallest cell).
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

SAFE_AGGREGATES: tuple[type[exp.Expression], ...] = (
    exp.Count,
    exp.Sum,
    exp.Avg,
    exp.Stddev,
    exp.StddevPop,
    exp.StddevSamp,
    exp.Variance,
    exp.VariancePop,
    exp.Median,
)
CELL_COLUMN = "__datalibrary_cell_records"


def _safe_projection(expression: exp.Expression, keys: set[str]) -> bool:
    """Only safe aggregates, constants, and group keys outside them."""
    if expression.find(exp.Window, exp.Subquery, exp.Select) is not None:
        return False
    aggregates = list(expression.find_all(exp.AggFunc))
    if any(not isinstance(a, SAFE_AGGREGATES) for a in aggregates):
        return False
    inner = {id(node) for a in aggregates for node in a.walk()}
    for column in expression.find_all(exp.Column):
        if id(column) not in inner and column.name.lower() not in keys:
            return False
    return True


def _key_names(select: exp.Select) -> set[str] | None:
    group = select.args.get("group")
    if group is None:
        return set()
    names: set[str] = set()
    aliases = {e.alias_or_name.lower(): e for e in select.expressions}
    for key in group.expressions:
        if isinstance(key, exp.Column):
            names.add(key.name.lower())
        elif isinstance(key, exp.Literal) and key.is_int:  # GROUP BY 1
            index = int(key.this) - 1
            if not 0 <= index < len(select.expressions):
                return None
            names.update(c.name.lower() for c in select.expressions[index].find_all(exp.Column))
        else:
            names.update(c.name.lower() for c in key.find_all(exp.Column))
    names.update(k for k in aliases if k in names)
    return names


def aggregate_select(sql: str) -> exp.Select | None:
    """The parsed top-level SELECT when the result is an aggregate, else None."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError:
        return None
    if not isinstance(tree, exp.Select) or tree.args.get("distinct") is not None:
        return None
    if not any(e.find(exp.AggFunc) for e in tree.expressions):
        return None
    keys = _key_names(tree)
    if keys is None:
        return None
    for projection in tree.expressions:
        if isinstance(projection, exp.Star) or projection.find(exp.Star) and not projection.find(exp.Count):
            return None
        if not _safe_projection(projection, keys):
            return None
    return tree


def cell_count_query(sql: str) -> str | None:
    """The aggregate query with the record count of each group appended (None: not aggregate)."""
    tree = aggregate_select(sql)
    if tree is None:
        return None
    companion = tree.copy()
    companion.set(
        "expressions",
        [*companion.expressions, exp.alias_(exp.Count(this=exp.Star()), CELL_COLUMN, quoted=True)],
    )
    return companion.sql(dialect="duckdb")

"""Row filters and masks written by stewards, checked before they are stored.

A row filter is a boolean SQL predicate over the table's own columns (``SITEID IN
('701','703')``): no subqueries, no table references, no functions the query guard forbids.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from datalibrary.errors import InvalidInput
from datalibrary.query.duckdb_parse import check_expression

MASK_NULL = "null"


def validate_row_filter(predicate: str, columns: set[str] | None = None) -> str:
    """The predicate re-rendered in DuckDB SQL, or InvalidInput saying what is wrong."""
    if len(predicate) > 4000:
        raise InvalidInput("the row filter is longer than 4000 characters", field="row_filter")
    try:
        tree = sqlglot.parse_one(predicate, read="duckdb", into=exp.Condition)
    except (ParseError, TokenError) as exc:
        raise InvalidInput(
            f"the row filter is not a valid SQL condition ({str(exc).splitlines()[0][:160]})",
            field="row_filter",
        ) from None
    for node in tree.walk():
        if isinstance(node, (exp.Select, exp.Subquery, exp.Table, exp.Query)):
            raise InvalidInput("a row filter cannot contain subqueries or tables", field="row_filter")
        if isinstance(node, exp.Column) and columns is not None and node.name.lower() not in columns:
            raise InvalidInput(f"the row filter names an unknown column '{node.name}'", field="row_filter")
    rendered = tree.sql(dialect="duckdb")
    try:  # the query's function allow-list, on DuckDB's own parse of the filter
        check_expression(rendered)
    except InvalidInput as exc:
        raise InvalidInput(
            exc.detail.replace("query refused", "row filter refused"), field="row_filter"
        ) from None
    return rendered


def validate_mask(column: str, spec: str) -> str:
    """Masks: ``null`` (the column reads as NULL) or ``const:TEXT`` (a constant text).

    There is deliberately no unkeyed hash mask: a hash of an identifier is reversible by
    enumeration; pseudonyms are made at ingestion with a keyed HMAC."""
    if spec == MASK_NULL or (spec.startswith("const:") and len(spec) <= 200):
        return spec
    raise InvalidInput(f"mask for '{column}' must be 'null' or 'const:TEXT', not {spec!r}", field="masks")

"""One row-security compiler: a grant's filter parsed once, compiled to both of its uses.

1. The DuckDB view predicate, ``COALESCE((filter), FALSE)``: a row whose filter is NULL
   (``COUNTRY <> 'USA'`` on a NULL country) is not visible, as SQL's WHERE would decide.
2. The Iceberg expression used to *prune* files. Pruning only ever skips files; it is sound
   when every row SQL finds TRUE is also TRUE for the Iceberg expression. Leaves are
   translated only where the two agree on every non-NULL value (column vs literal of the same
   type family, IN lists, IS NULL, LIKE 'prefix%'); anything else becomes ``AlwaysTrue``
   (no pruning). ``NOT`` is applied only to children translated exactly, since the negation
   of an over-approximation would be an under-approximation. Iceberg treats ``NULL <> 'x'``
   as a possible match, which only keeps more files.

3. A proof from one file's Parquet statistics that the filter is TRUE on *every* row of it
   (``holds_everywhere``), so the file is read without evaluating the filter. This is not
   Iceberg's strict evaluation (which takes ``NULL <> 'x'`` as a match): it follows SQL's
   three-valued logic itself — a leaf is proven TRUE (or FALSE) only for a column with no NULL
   in the file, from exact minimum and maximum values of strings, integers and dates; AND, OR
   and NOT combine proofs of TRUE and FALSE; anything else proves nothing (the file is read
   with the filter).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import pyarrow as pa
import sqlglot
from pyiceberg.expressions import (
    AlwaysFalse,
    AlwaysTrue,
    And,
    BooleanExpression,
    EqualTo,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    IsNull,
    LessThan,
    LessThanOrEqual,
    Not,
    NotEqualTo,
    Or,
    StartsWith,
)
from sqlglot import exp

COMPARISONS = {
    exp.EQ: (EqualTo, EqualTo),
    exp.NEQ: (NotEqualTo, NotEqualTo),
    exp.GT: (GreaterThan, LessThan),
    exp.GTE: (GreaterThanOrEqual, LessThanOrEqual),
    exp.LT: (LessThan, GreaterThan),
    exp.LTE: (LessThanOrEqual, GreaterThanOrEqual),
}

Types = dict[str, tuple[str, pa.DataType]]


@dataclass(frozen=True)
class RowSecurity:
    """A row filter (DuckDB SQL over the table's columns), parsed once."""

    source: str

    @property
    def tree(self) -> exp.Expression:
        return _parse(self.source)

    @property
    def columns(self) -> frozenset[str]:
        return frozenset(c.name.lower() for c in self.tree.find_all(exp.Column))

    def view_predicate(self) -> str:
        """The WHERE of the caller's view: visible only where the filter is TRUE."""
        return f"COALESCE(({self.tree.sql(dialect='duckdb')}), FALSE)"

    def iceberg(self, schema: pa.Schema) -> BooleanExpression:
        """An Iceberg expression true for at least every row the filter is TRUE for."""
        return iceberg_expression(self.tree, schema)

    def holds_everywhere(self, stats: FileStats) -> bool:
        """Whether the file's statistics prove the filter TRUE (not NULL) on every row."""
        return _proves(self.tree, stats, True)


@dataclass(frozen=True)
class ColumnStats:
    """One column over a whole file: exact bounds of its non-NULL values, its NULL count."""

    minimum: object
    maximum: object
    nulls: int


@dataclass(frozen=True)
class FileStats:
    rows: int
    columns: dict[str, ColumnStats]  # lower-case name -> statistics (absent: unknown)
    types: dict[str, pa.DataType]  # lower-case name -> the table's type


PROVABLE_COMPARISONS = {
    exp.EQ: lambda lo, hi, v: (lo == hi == v, v < lo or v > hi),
    exp.NEQ: lambda lo, hi, v: (v < lo or v > hi, lo == hi == v),
    exp.GT: lambda lo, hi, v: (lo > v, hi <= v),
    exp.GTE: lambda lo, hi, v: (lo >= v, hi < v),
    exp.LT: lambda lo, hi, v: (hi < v, lo >= v),
    exp.LTE: lambda lo, hi, v: (hi <= v, lo > v),
}
FLIPPED = {
    exp.EQ: exp.EQ,
    exp.NEQ: exp.NEQ,
    exp.GT: exp.LT,
    exp.GTE: exp.LTE,
    exp.LT: exp.GT,
    exp.LTE: exp.GTE,
}


def _proves(node: exp.Expression, stats: FileStats, truth: bool) -> bool:
    """Whether ``node`` is ``truth`` (TRUE or FALSE, never NULL) on every row of the file."""
    if isinstance(node, exp.Paren):
        return _proves(node.this, stats, truth)
    if isinstance(node, exp.Boolean):
        return bool(node.this) is truth
    if isinstance(node, exp.Not):
        return _proves(node.this, stats, not truth)
    if isinstance(node, (exp.And, exp.Or)):
        both = isinstance(node, exp.And) is truth  # AND is TRUE / OR is FALSE when both are
        left, right = _proves(node.left, stats, truth), _proves(node.right, stats, truth)
        return (left and right) if both else (left or right)
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        found = _known(node.this, stats)
        if found is None:
            return False
        nulls = found[0].nulls
        return nulls == stats.rows if truth else nulls == 0
    found = _known(node.this if isinstance(node, exp.In) else None, stats)
    if isinstance(node, exp.In) and found and not node.args.get("query") and not node.args.get("unnest"):
        column, arrow_type = found
        values = [_exact(e, arrow_type) for e in node.expressions]
        if column.nulls or not values or any(v is None for v in values):
            return False
        lo, hi = column.minimum, column.maximum
        return (lo == hi and lo in values) if truth else all(v < lo or v > hi for v in values)
    if type(node) in PROVABLE_COMPARISONS:
        kind = type(node)
        if isinstance(node.right, exp.Column):
            column_node, literal, kind = node.right, node.left, FLIPPED[kind]
        else:
            column_node, literal = node.left, node.right
        found = _known(column_node, stats)
        if found is None or found[0].nulls:
            return False
        value = _exact(literal, found[1])
        if value is None:
            return False
        proven_true, proven_false = PROVABLE_COMPARISONS[kind](found[0].minimum, found[0].maximum, value)
        return proven_true if truth else proven_false
    return False


def _known(node: exp.Expression | None, stats: FileStats) -> tuple[ColumnStats, pa.DataType] | None:
    if not isinstance(node, exp.Column) or node.table:
        return None
    name = node.name.lower()
    column, arrow_type = stats.columns.get(name), stats.types.get(name)
    if column is None or arrow_type is None:
        return None
    if column.minimum is None and not 0 < column.nulls == stats.rows:  # no bounds, not all NULL
        return None
    if column.minimum is not None and not _bounds_fit(column, arrow_type):
        return None
    return column, arrow_type


def _bounds_fit(column: ColumnStats, arrow_type: pa.DataType) -> bool:
    """Whether the file's bounds have the Python type the table's column type compares as."""
    if _is_string(arrow_type):
        expected: type = str
    elif pa.types.is_integer(arrow_type):
        expected = int
    elif pa.types.is_date32(arrow_type):
        expected = dt.date
    else:
        return False
    return type(column.minimum) is expected and type(column.maximum) is expected


def _exact(literal: exp.Expression, arrow_type: pa.DataType) -> object | None:
    """A literal's value where Python compares it with the statistics as DuckDB compares it
    with the column: strings (byte order = code point order), integers, dates."""
    if not isinstance(literal, exp.Literal):
        return None
    if _is_string(arrow_type) or pa.types.is_integer(arrow_type):
        return _value(literal, arrow_type)
    if pa.types.is_date32(arrow_type) and literal.is_string:
        text = str(literal.this)
        try:
            return dt.date.fromisoformat(text) if len(text) == 10 else None
        except ValueError:
            return None
    return None


@lru_cache(maxsize=1024)
def _parse(source: str) -> exp.Expression:
    return sqlglot.parse_one(source, read="duckdb")


def compile_filter(source: str | None) -> RowSecurity | None:
    return RowSecurity(source) if source else None


def iceberg_expression(tree: exp.Expression, schema: pa.Schema) -> BooleanExpression:
    types = {f.name.lower(): (f.name, f.type) for f in schema}
    return _translate(tree, types)[0]


def _translate(
    node: exp.Expression, types: dict[str, tuple[str, pa.DataType]]
) -> tuple[BooleanExpression, bool]:
    """(expression, exact): exact means SQL TRUE implies Iceberg true and SQL FALSE implies
    Iceberg false on every row; otherwise the expression only over-approximates SQL TRUE."""
    if isinstance(node, exp.Paren):
        return _translate(node.this, types)
    if isinstance(node, exp.Boolean):
        return (AlwaysTrue() if node.this else AlwaysFalse()), True
    if isinstance(node, exp.And):
        (left, lx), (right, rx) = _translate(node.left, types), _translate(node.right, types)
        return And(left, right), lx and rx
    if isinstance(node, exp.Or):
        (left, lx), (right, rx) = _translate(node.left, types), _translate(node.right, types)
        return Or(left, right), lx and rx
    if isinstance(node, exp.Not):
        child, exact = _translate(node.this, types)
        return (Not(child), True) if exact else (AlwaysTrue(), False)
    leaf = _leaf(node, types)
    return (leaf, True) if leaf is not None else (AlwaysTrue(), False)


def _leaf(node: exp.Expression, types: Types) -> BooleanExpression | None:
    if type(node) in COMPARISONS:
        forward, flipped = COMPARISONS[type(node)]
        if isinstance(node.left, exp.Column) and isinstance(node.right, exp.Literal):
            column, literal, make = node.left, node.right, forward
        elif isinstance(node.right, exp.Column) and isinstance(node.left, exp.Literal):
            column, literal, make = node.right, node.left, flipped
        else:
            return None
        found = _column(column, types)
        value = _value(literal, found[1]) if found else None
        return make(found[0], value) if found and value is not None else None
    if isinstance(node, exp.In) and not node.args.get("query") and not node.args.get("unnest"):
        found = _column(node.this, types)
        if not found or not node.expressions:
            return None
        values = [_value(e, found[1]) if isinstance(e, exp.Literal) else None for e in node.expressions]
        return None if any(v is None for v in values) else In(found[0], values)
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        found = _column(node.this, types)
        return IsNull(found[0]) if found else None
    if isinstance(node, exp.Like) and isinstance(node.expression, exp.Literal) and node.expression.is_string:
        found = _column(node.this, types)
        pattern = node.expression.this
        prefix = pattern[:-1]
        if (
            found
            and _is_string(found[1])
            and pattern.endswith("%")
            and prefix
            and not set(prefix) & {"%", "_", "\\"}
        ):
            return StartsWith(found[0], prefix)
    return None


def _column(
    node: exp.Expression, types: dict[str, tuple[str, pa.DataType]]
) -> tuple[str, pa.DataType] | None:
    if not isinstance(node, exp.Column) or node.table:
        return None
    return types.get(node.name.lower())


def _is_string(arrow_type: pa.DataType) -> bool:
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


def _value(literal: exp.Literal, arrow_type: pa.DataType) -> object | None:
    """The literal's value if SQL and Iceberg compare it with the column in the same way."""
    text = str(literal.this)
    if _is_string(arrow_type):
        return text if literal.is_string else None
    if pa.types.is_integer(arrow_type):
        return int(text) if not literal.is_string and text.lstrip("-").isdigit() else None
    if pa.types.is_float64(arrow_type) and not literal.is_string:
        try:
            return float(text)
        except ValueError:
            return None
    if pa.types.is_date(arrow_type) and literal.is_string:
        try:
            return dt.date.fromisoformat(text).isoformat() if len(text) == 10 else None
        except ValueError:
            return None
    return None

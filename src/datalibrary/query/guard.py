"""The SQL guard: only read queries over catalog tables reach the engine.

SQL is treated as code. We parse it with sqlglot (DuckDB dialect), accept a single
SELECT / set operation / WITH (optionally under EXPLAIN), refuse DDL, DML, configuration,
table functions and system catalogs, then *regenerate* the SQL from the tree with every
table reference replaced by the caller's restricted view. Comments and anything sqlglot
does not understand never reach DuckDB. The engine's lockdown is the second wall.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from datalibrary.errors import InvalidInput
from datalibrary.query.sql_errors import describe

MAX_SQL_CHARS = 100_000
MAX_DEPTH = 150
MAX_NODES = 50_000
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")

# Function name prefixes and names that touch files, the catalog, settings or extensions.
FORBIDDEN_FUNCTION_PREFIXES = (
    "read_", "duckdb_", "pragma_", "parquet_", "iceberg_", "delta_", "sniff_", "glob", "sqlite_",
    "postgres_", "mysql_", "json_execute", "arrow_scan", "python_", "pg_", "load_", "install_",
)  # fmt: skip
FORBIDDEN_FUNCTIONS = {
    "query", "query_table", "getenv", "current_setting", "which_secret", "checkpoint",
    "force_checkpoint", "enable_profiling", "export_database", "import_database", "test_all_types",
    "summary", "repeat_row", "range", "generate_series", "unnest_table", "has_any_column_privilege",
    "current_schema", "current_schemas", "current_database", "current_catalog", "version", "error",
}  # fmt: skip
RESERVED_NAMESPACES = {"information_schema", "pg_catalog", "main", "temp", "system", "memory"}
ALLOWED_ROOTS = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery)


def refuse(reason: str) -> InvalidInput:
    return InvalidInput(f"query refused: {reason}", field="sql")


@dataclass(frozen=True)
class TableRef:
    """A catalog table named by the query, at an optional snapshot or time."""

    namespace: str
    table: str
    snapshot_id: int | None = None
    as_of: str | None = None  # ISO timestamp

    @property
    def name(self) -> str:
        return f"{self.namespace}.{self.table}"


@dataclass
class GuardedQuery:
    """A parsed, checked query; ``render`` substitutes views for the catalog tables."""

    tree: exp.Expression
    explain: bool
    refs: list[TableRef] = field(default_factory=list)
    columns: set[str] = field(default_factory=set)
    star: bool = False
    _nodes: dict[TableRef, list[exp.Table]] = field(default_factory=dict)

    def pushdown(self, ref: TableRef) -> str | None:
        """The query's simple predicates on ``ref`` (column vs literal, ANDed), for file pruning.

        Only when the table appears once, alone in its SELECT's FROM (no join), so a predicate
        can never drop rows another reference to the table would need."""
        nodes = self._nodes.get(ref, [])
        if len(nodes) != 1:
            return None
        node = nodes[0]
        select = node.parent.parent if isinstance(node.parent, exp.From) else None
        if not isinstance(select, exp.Select) or select.args.get("joins") or not select.args.get("where"):
            return None
        names = {ref.table, node.alias_or_name}
        kept = [
            condition.sql(dialect="duckdb", comments=False)
            for condition in _conjuncts(select.args["where"].this)
            if _simple(condition, names)
        ]
        return " AND ".join(kept) or None

    def render(self, views: dict[TableRef, str]) -> str:
        tree = self.tree.copy()
        originals = {id(node): ref for ref, nodes in self._nodes.items() for node in nodes}
        for original, node in zip(self.tree.find_all(exp.Table), tree.find_all(exp.Table), strict=True):
            ref = originals.get(id(original))
            if ref is None:
                continue
            alias = node.alias or ref.table
            table = exp.Table(this=exp.to_identifier(views[ref], quoted=True))
            node.replace(exp.alias_(table, alias, table=True))
        sql = tree.sql(dialect="duckdb", comments=False)
        return f"EXPLAIN {sql}" if self.explain else sql


PUSHABLE = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


def _conjuncts(condition: exp.Expression) -> list[exp.Expression]:
    if isinstance(condition, exp.And):
        return _conjuncts(condition.left) + _conjuncts(condition.right)
    if isinstance(condition, exp.Paren):
        return _conjuncts(condition.this)
    return [condition]


def _column_of(node: exp.Expression, tables: set[str]) -> bool:
    return isinstance(node, exp.Column) and (not node.table or node.table in tables)


def _simple(condition: exp.Expression, tables: set[str]) -> bool:
    """column <op> literal, literal <op> column, or column IN (literals)."""
    if isinstance(condition, PUSHABLE):
        left, right = condition.left, condition.right
        return (_column_of(left, tables) and isinstance(right, exp.Literal)) or (
            _column_of(right, tables) and isinstance(left, exp.Literal)
        )
    if isinstance(condition, exp.In) and not condition.args.get("query"):
        return _column_of(condition.this, tables) and all(
            isinstance(e, exp.Literal) for e in condition.expressions
        )
    return False


def _depth(node: exp.Expression) -> int:
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in current.iter_expressions())
    return deepest


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def forbidden_function(node: exp.Expression) -> str | None:
    """The name of a function call the guard refuses, or None."""
    if not isinstance(node, exp.Func):
        return None
    name = _function_name(node)
    return name if name in FORBIDDEN_FUNCTIONS or name.startswith(FORBIDDEN_FUNCTION_PREFIXES) else None


def _snapshot(node: exp.Table) -> tuple[int | None, str | None]:
    version = node.args.get("version")
    when = node.args.get("when")
    kind, value = None, None
    if isinstance(version, exp.Version):
        kind, value = str(version.name).upper(), version.expression
    elif isinstance(when, exp.HistoricalData):
        kind, value = str(when.args.get("kind")).upper(), when.expression
    if kind is None:
        return None, None
    if not isinstance(value, exp.Literal):
        raise refuse("time travel needs a literal snapshot id or timestamp")
    if kind == "VERSION":
        if value.is_string or not str(value.this).isdigit():
            raise refuse("FOR VERSION AS OF needs a snapshot id (a whole number)")
        return int(value.this), None
    if kind == "TIMESTAMP":
        return None, str(value.this)
    raise refuse(f"unsupported time travel kind {kind}")


def check(sql: str) -> GuardedQuery:
    """Parse and check ``sql``; raise InvalidInput saying why it is refused."""
    if not sql or not sql.strip():
        raise refuse("the query is empty")
    if len(sql) > MAX_SQL_CHARS:
        raise refuse(f"the query is longer than {MAX_SQL_CHARS} characters")
    if "\x00" in sql:
        raise refuse("the query contains a NUL character")
    text = sql.strip().rstrip(";").strip()
    explain = False
    match = re.match(r"(?is)^\s*explain\b(?!\s+analy[sz]e)\s*(.*)$", text)
    if match:
        explain, text = True, match.group(1)
    try:
        statements = [s for s in sqlglot.parse(text, read="duckdb") if s is not None]
    except (ParseError, TokenError) as exc:
        raise refuse(f"it is not valid SQL: {describe(exc)}") from None
    except RecursionError:
        raise refuse("the query is nested too deeply") from None
    if len(statements) != 1:
        raise refuse("send exactly one statement")
    tree = statements[0]
    if not isinstance(tree, ALLOWED_ROOTS):
        raise refuse(f"only read queries (SELECT, WITH, UNION, EXPLAIN) are allowed, not {tree.key.upper()}")
    if _depth(tree) > MAX_DEPTH:
        raise refuse("the query is nested too deeply")
    nodes = list(tree.walk())
    if len(nodes) > MAX_NODES:
        raise refuse("the query is too large")

    guarded = GuardedQuery(tree=tree, explain=explain)
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for node in nodes:
        if isinstance(node, (exp.DDL, exp.DML, exp.Command, exp.Set, exp.Pragma, exp.Use, exp.Transaction)):
            raise refuse(f"{node.key.upper()} is not allowed")
        if name := forbidden_function(node):
            raise refuse(f"the function {name}() is not allowed")
        if isinstance(node, exp.Star) or (isinstance(node, exp.Column) and isinstance(node.this, exp.Star)):
            guarded.star = True
        elif isinstance(node, exp.Column):
            guarded.columns.add(node.name.lower())
        if isinstance(node, exp.Table):
            _check_table(node, cte_names, guarded)
    return guarded


def _check_table(node: exp.Table, cte_names: set[str], guarded: GuardedQuery) -> None:
    if not isinstance(node.this, exp.Identifier):
        raise refuse("table functions are not allowed; name a catalog table as namespace.table")
    parts = [p.name for p in node.parts]
    if len(parts) == 1 and parts[0].lower() in cte_names:
        return
    if len(parts) != 2:
        raise refuse(f"'{'.'.join(parts)}' is not a catalog table; name tables as namespace.table")
    namespace, table = parts
    if namespace.lower() in RESERVED_NAMESPACES or namespace.lower().startswith("duckdb"):
        raise refuse(f"'{namespace}' is a system schema; only catalog tables can be queried")
    if not (IDENTIFIER.match(namespace) and IDENTIFIER.match(table)):
        raise refuse(f"'{namespace}.{table}' is not a valid table name")
    snapshot_id, as_of = _snapshot(node)
    ref = TableRef(namespace.lower(), table.lower(), snapshot_id, as_of)
    if ref not in guarded._nodes:
        guarded.refs.append(ref)
        guarded._nodes[ref] = []
    guarded._nodes[ref].append(node)


def columns_in(predicate: str) -> set[str]:
    """Column names a stored predicate (a row filter) references."""
    return {c.name for c in sqlglot.parse_one(predicate, read="duckdb").find_all(exp.Column)}

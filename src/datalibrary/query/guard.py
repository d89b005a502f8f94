"""The SQL guard: only read queries over the caller's granted tables reach the engine.

SQL is treated as code. We parse it with sqlglot (DuckDB dialect), accept a single
SELECT / set operation / WITH (optionally under EXPLAIN), refuse DDL, DML, configuration and
table functions (also under LATERAL), and resolve every table name *per scope* with sqlglot's
scope analysis: a name is either a CTE visible in that scope or a two-part catalog table
(``namespace.table``); anything else is refused. The SQL is then *regenerated* from the tree
with each catalog table replaced by the caller's restricted view and each CTE renamed to a
fresh name (``dl_cte_N``) that nothing in the engine's catalog carries, so a scope rule read
differently by DuckDB binds to nothing rather than to a system view or a file. Finally DuckDB's
own parser reads the rendered SQL (once: see ``GuardedQuery.render``) and every table,
function and clause it sees is checked against allow-lists (``duckdb_parse``). Comments never
reach DuckDB. The engine (Arrow data only, external access off, configuration locked) is the
last wall. Accepted query texts are kept (``ACCEPTED``), so a repeated query is not checked
again.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError, SqlglotError, TokenError
from sqlglot.optimizer.scope import Scope, traverse_scope

from datalibrary.errors import InvalidInput
from datalibrary.query import duckdb_parse
from datalibrary.query.sql_errors import describe

MAX_SQL_CHARS = 100_000
MAX_DEPTH = 150
MAX_NODES = 50_000
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
RESERVED_NAMESPACES = {"information_schema", "pg_catalog", "main", "temp", "system", "memory"}
ALLOWED_ROOTS = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery)
REFUSED_NODES = (exp.DDL, exp.DML, exp.Command, exp.Set, exp.Pragma, exp.Use, exp.Transaction, exp.Into)
CTE_PREFIX = "dl_cte_"
# Names the service gives views and check() gives placeholders: plain quoted identifiers.
VIEW_NAME = re.compile(r"^dl_[a-z0-9_]{1,60}$")
# sqlglot warns about syntax it falls back on, quoting the SQL: user SQL stays out of the logs.
logging.getLogger("sqlglot").setLevel(logging.ERROR)


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
    # id(Table node naming a CTE) -> id(CTE definition); id(CTE definition) -> fresh name
    _cte_refs: dict[int, int] = field(default_factory=dict)
    _cte_names: dict[int, str] = field(default_factory=dict)
    # The SQL DuckDB's parser accepted in ``check``, with placeholder names for the tables.
    _checked: tuple[dict[TableRef, str], str] | None = None

    def pushdown(self, ref: TableRef, visible: Callable[[str], bool] | None = None) -> str | None:
        """The query's simple predicates on ``ref`` (column vs literal, ANDed), for file pruning.

        Only when the table appears once, alone in its SELECT's FROM (no join), so a predicate
        can never drop rows another reference to the table would need; and only on
        ``visible`` columns (lower-case; the caller's unmasked ones), so pruning never depends
        on values the caller cannot see."""
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
            and (visible is None or all(visible(c.name.lower()) for c in condition.find_all(exp.Column)))
        ]
        return " AND ".join(kept) or None

    def render(self, views: dict[TableRef, str]) -> str:
        """The SQL DuckDB runs: views for catalog tables, fresh names for CTEs; checked by
        DuckDB's parser against exactly those names.

        DuckDB's parser already accepted this query in ``check`` with placeholder table names.
        If the SQL now is that text with exactly the placeholders swapped for the views' names
        (quoted identifiers both), DuckDB reads the same tree with other table names, so it is
        not parsed again; any other difference (a placeholder's text inside a literal, say)
        sends it through the parser once more."""
        sql = self._sql(views)
        if not self._already_checked(views, sql):
            duckdb_parse.check_sql(sql, {v.lower() for v in views.values()} | set(self._cte_names.values()))
        return f"EXPLAIN {sql}" if self.explain else sql

    def _already_checked(self, views: dict[TableRef, str], sql: str) -> bool:
        if self._checked is None:
            return False
        placeholders, checked = self._checked
        names = set(views.values())
        if (
            placeholders.keys() != views.keys()
            or len(names) != len(views)
            or not names.isdisjoint(placeholders.values())
            or not all(VIEW_NAME.match(v) for v in names)
        ):
            return False
        swapped = checked
        for ref, placeholder in placeholders.items():
            swapped = swapped.replace(_quoted(placeholder), _quoted(views[ref]))
        return swapped == sql

    def _sql(self, views: dict[TableRef, str]) -> str:
        tree = self.tree.copy()
        originals = {id(node): ref for ref, nodes in self._nodes.items() for node in nodes}
        pairs = list(zip(self.tree.walk(), tree.walk(), strict=True))
        for original, node in pairs:
            if isinstance(original, exp.CTE):
                alias = node.args["alias"]
                alias.set("this", exp.to_identifier(self._cte_names[id(original)], quoted=True))
            elif isinstance(original, exp.Table):
                if id(original) in originals:
                    target = views[originals[id(original)]]
                    _point(node, target, originals[id(original)].table)
                elif id(original) in self._cte_refs:
                    _point(node, self._cte_names[self._cte_refs[id(original)]], original.name)
                else:  # check() classified every table; this cannot happen
                    raise refuse(f"'{original.sql(dialect='duckdb')}' is not a table of this query")
        try:
            return tree.sql(dialect="duckdb", comments=False)
        except (SqlglotError, ValueError, RecursionError) as exc:  # a tree sqlglot cannot write back
            raise refuse(f"it uses syntax the guard cannot rewrite ({str(exc)[:120]})") from None


def _quoted(name: str) -> str:
    return '"' + name + '"'


def _point(node: exp.Table, target: str, alias: str) -> None:
    """Make the table node read ``target``, keeping the name the query uses for it."""
    if not node.args.get("alias"):
        node.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    node.set("this", exp.to_identifier(target, quoted=True))
    for arg in ("db", "catalog", "version", "when"):
        node.set(arg, None)


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


class _Accepted:
    """Queries the guard accepted, by exact text (least recently used dropped): the check is a
    pure function of the text, and a repeated query (a dashboard, a notebook cell run again)
    skips the ~5 ms of parsing and scope resolution. Refusals are not kept."""

    SIZE, MAX_CHARS = 256, 10_000

    def __init__(self) -> None:
        self._kept: OrderedDict[str, GuardedQuery] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sql: str) -> GuardedQuery | None:
        with self._lock:
            found = self._kept.get(sql)
            if found is not None:
                self._kept.move_to_end(sql)
            return found

    def put(self, sql: str, guarded: GuardedQuery) -> None:
        if len(sql) > self.MAX_CHARS:
            return
        with self._lock:
            self._kept[sql] = guarded
            while len(self._kept) > self.SIZE:
                self._kept.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()


ACCEPTED = _Accepted()


def check(sql: str) -> GuardedQuery:
    """Parse and check ``sql``; raise InvalidInput saying why it is refused. The result is
    shared by every caller of the same text: treat it as read-only."""
    found = ACCEPTED.get(sql)
    if found is not None:
        return found
    guarded = _check(sql)
    ACCEPTED.put(sql, guarded)
    return guarded


def _check(sql: str) -> GuardedQuery:
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
    for node in nodes:
        if isinstance(node, REFUSED_NODES):
            raise refuse(f"{node.key.upper()} is not allowed")
        if isinstance(node, exp.Lateral) and not isinstance(node.this, (exp.Subquery, exp.Query)):
            raise refuse("table functions are not allowed, also under LATERAL")
        if isinstance(node, exp.Table) and not isinstance(node.this, exp.Identifier):
            raise refuse("table functions are not allowed; name a catalog table as namespace.table")
        if isinstance(node, exp.Star) or (isinstance(node, exp.Column) and isinstance(node.this, exp.Star)):
            guarded.star = True
        elif isinstance(node, exp.Column):
            guarded.columns.add(node.name.lower())
    _resolve(tree, guarded)
    # DuckDB's parser checks the regenerated SQL (functions, tables, clauses) before anything runs.
    placeholders = {ref: f"dl_check_{i}" for i, ref in enumerate(guarded.refs)}
    checked = guarded._sql(placeholders)
    duckdb_parse.check_sql(checked, set(placeholders.values()) | set(guarded._cte_names.values()))
    guarded._checked = (placeholders, checked)
    return guarded


def _scopes(tree: exp.Expression) -> list[Scope]:
    try:
        return traverse_scope(tree)
    except (OptimizeError, SqlglotError, RecursionError, KeyError, ValueError) as exc:
        raise refuse(f"its table names cannot be resolved ({str(exc)[:160]})") from None


def _resolve(tree: exp.Expression, guarded: GuardedQuery) -> None:
    """Classify every table name in the scope where it appears: a CTE visible there, or a
    catalog table. A name sqlglot's scopes do not cover is refused."""
    for scope in _scopes(tree):
        for table in scope.tables:
            source = scope.sources.get(table.alias_or_name)
            definition = _cte_definition(source) if isinstance(source, Scope) else None
            if (
                definition is not None
                and len(table.parts) == 1
                and table.name.lower() == definition.alias.lower()
            ):
                if table.args.get("version") or table.args.get("when"):
                    raise refuse("time travel applies to catalog tables, not to CTEs")
                guarded._cte_refs[id(table)] = id(definition)
                guarded._cte_names.setdefault(id(definition), f"{CTE_PREFIX}{len(guarded._cte_names) + 1}")
            else:
                _check_table(table, guarded)
    for cte in tree.find_all(exp.CTE):
        guarded._cte_names.setdefault(id(cte), f"{CTE_PREFIX}{len(guarded._cte_names) + 1}")
    classified = set(guarded._cte_refs) | {id(n) for nodes in guarded._nodes.values() for n in nodes}
    for table in tree.find_all(exp.Table):
        if id(table) not in classified:
            raise refuse(f"'{table.sql(dialect='duckdb')}' does not name a table of the catalog or a CTE")


def _cte_definition(scope: Scope) -> exp.CTE | None:
    if not scope.is_cte:
        return None
    node: exp.Expression | None = scope.expression
    while node is not None and not isinstance(node, exp.CTE):
        node = node.parent
    return node


def _check_table(node: exp.Table, guarded: GuardedQuery) -> None:
    parts = [p.name for p in node.parts]
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
    return set(_columns_in(predicate))


@functools.lru_cache(maxsize=1024)
def _columns_in(predicate: str) -> frozenset[str]:
    return frozenset(c.name for c in sqlglot.parse_one(predicate, read="duckdb").find_all(exp.Column))

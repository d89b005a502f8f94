"""A second opinion from DuckDB's own parser on the exact SQL that will run.

sqlglot and DuckDB do not always agree (a function name sqlglot maps to another node, a
syntax one of them reads differently). So the rendered SQL is parsed once more by DuckDB
(``json_serialize_sql``, on a connection that holds no data and cannot reach files) and its
tree is checked against allow-lists: every table it names is one of the caller's views or a
CTE the guard renamed, every function is allowed, no table function, no ``AT (...)`` clause,
no statement but a query. Whatever the engine binds, it binds from this tree.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import duckdb

from datalibrary.errors import InvalidInput
from datalibrary.query.functions import allowed

# Table sources DuckDB's parser may report; TABLE_FUNCTION, SHOW_REF and others are refused.
TABLE_REFS = {"BASE_TABLE", "SUBQUERY", "JOIN", "EMPTY", "EXPRESSION_LIST"}
QUERY_NODES = {"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"}
FUNCTION_CLASSES = {"FUNCTION", "WINDOW", "AGGREGATE"}
REFUSED_CLASSES = {"PARAMETER", "DEFAULT"}

_local = threading.local()


def _parser() -> duckdb.DuckDBPyConnection:
    con = getattr(_local, "con", None)
    if con is None:
        con = duckdb.connect(
            ":memory:",
            config={
                "enable_external_access": False,
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "lock_configuration": True,
            },
        )
        _local.con = con
    return con


def refuse(reason: str) -> InvalidInput:
    return InvalidInput(f"query refused: {reason}", field="sql")


def parse_tree(sql: str) -> dict[str, Any]:
    """DuckDB's parse tree of one SELECT statement, or InvalidInput."""
    row = _parser().execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchone()
    tree = json.loads(row[0]) if row else {"error": True}
    if tree.get("error"):
        message = str(tree.get("error_message", "not a query"))[:200]
        raise refuse(f"the engine does not read it as a single query ({message})")
    statements = tree.get("statements", [])
    if len(statements) != 1:
        raise refuse("send exactly one statement")
    return statements[0]


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            yield current
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)


def check_sql(sql: str, tables: set[str]) -> set[str]:
    """Refuse ``sql`` unless DuckDB reads it as a query over ``tables`` (lower-case names) with
    allowed functions only. Returns the table names it reads."""
    named: set[str] = set()
    for node in _walk(parse_tree(sql)):
        check_node(node, tables, named)
    return named


def check_expression(sql: str) -> None:
    """Refuse a stand-alone condition (a row filter) that calls anything not allowed."""
    for node in _walk(parse_tree(f"SELECT 1 WHERE {sql}")):
        check_node(node, set(), set())


def check_node(node: dict[str, Any], tables: set[str], named: set[str]) -> None:
    kind, cls = node.get("type"), node.get("class")
    if cls is not None:
        if cls in REFUSED_CLASSES:
            raise refuse(f"{cls.lower()} expressions are not allowed")
        if cls in FUNCTION_CLASSES and "function_name" in node:
            name = str(node["function_name"])
            if node.get("schema") or node.get("catalog"):
                raise refuse(f"the function {node.get('schema')}.{name}() is not allowed")
            if not allowed(name, is_operator=bool(node.get("is_operator"))):
                raise refuse(f"the function {name}() is not allowed")
        return
    if not isinstance(kind, str):
        return
    if kind.endswith("_NODE") and "modifiers" in node:
        if kind not in QUERY_NODES:
            raise refuse(f"{kind.removesuffix('_NODE').lower()} is not allowed")
        return
    if "sample" in node and "alias" in node:  # a table reference
        if kind not in TABLE_REFS:
            what = "table functions" if kind == "TABLE_FUNCTION" else f"{kind.lower()} sources"
            raise refuse(f"{what} are not allowed; name a catalog table as namespace.table")
        if kind == "BASE_TABLE":
            name = str(node.get("table_name", "")).lower()
            if node.get("schema_name") or node.get("catalog_name") or name not in tables:
                raise refuse(f"'{node.get('table_name')}' is not a table of this query")
            if node.get("at_clause") is not None:
                raise refuse("AT (...) is not allowed; use FOR VERSION AS OF / FOR TIMESTAMP AS OF")
            named.add(name)

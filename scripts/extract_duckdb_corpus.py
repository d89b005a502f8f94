"""Build the query-security fuzz corpus from DuckDB's own SQL tests.

Reads ``test/sql/**/*.test`` (sqllogictest files) from a git checkout of duckdb/duckdb,
keeps the statements that are queries (SELECT / WITH / FROM / VALUES / EXPLAIN / a
parenthesised query / set operations), and writes each twice: as written, and with every
table name that is not a CTE in scope rewritten to the lake table ``s.t`` (so more of them
reach the engine). Only extracted SQL text is kept (test data, no DuckDB code).

    python scripts/extract_duckdb_corpus.py /work/.mirror/duckdb+duckdb/repo \
        tests/data/duckdb_corpus.jsonl.gz --max-statements 6000
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator

QUERY_START = re.compile(r"^\s*\(*\s*(select|with|from|values|explain|table|pivot|unpivot)\b", re.I)
DIRECTIVE = re.compile(
    r"^(statement|query|require|load|loop|endloop|foreach|mode|halt|restart|skipif|onlyif|concurrent)"
)
MAX_CHARS = 600
GIT = shutil.which("git") or "git"


def test_files(repo: str) -> list[str]:
    out = subprocess.run(  # noqa: S603
        [GIT, f"--git-dir={repo}", "ls-tree", "-r", "--name-only", "HEAD", "test/sql"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return sorted(p for p in out.splitlines() if p.endswith(".test"))


def read(repo: str, path: str) -> str:
    return subprocess.run(  # noqa: S603
        [GIT, f"--git-dir={repo}", "show", f"HEAD:{path}"], check=True, capture_output=True, text=True,
        errors="replace",
    ).stdout  # fmt: skip


def statements(text: str) -> Iterator[str]:
    """The SQL of each ``statement`` / ``query`` block (up to ``----`` or a blank line)."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith(("statement", "query")):
            i += 1
            body = []
            while i < len(lines) and lines[i].strip() and lines[i].strip() != "----":
                body.append(lines[i])
                i += 1
            sql = "\n".join(body).strip()
            if sql and "${" not in sql and not DIRECTIVE.match(sql):
                yield sql
        i += 1


def rewrite(sql: str) -> str | None:
    """Every one-part table name that is not a CTE in its scope becomes ``s.t``."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.optimizer.scope import Scope, traverse_scope

    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
        scopes = traverse_scope(tree)
    except Exception:  # noqa: BLE001 (anything sqlglot cannot read stays as written)
        return None
    changed = False
    for scope in scopes:
        for table in scope.tables:
            if isinstance(scope.sources.get(table.alias_or_name), Scope) or not isinstance(
                table.this, exp.Identifier
            ):
                continue
            if not table.args.get("alias"):
                table.set("alias", exp.TableAlias(this=exp.to_identifier(table.name)))
            table.set("this", exp.to_identifier("t"))
            table.set("db", exp.to_identifier("s"))
            table.set("catalog", None)
            changed = True
    try:
        return tree.sql(dialect="duckdb") if changed else None
    except Exception:  # noqa: BLE001 (sqlglot cannot write every tree it reads)
        return None


def main() -> int:
    import logging

    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", help="git directory of a duckdb/duckdb checkout")
    parser.add_argument("output", help="corpus file to write (.jsonl.gz)")
    parser.add_argument("--max-statements", type=int, default=6000)
    args = parser.parse_args()
    seen: set[str] = set()
    found: list[dict[str, str]] = []
    files = test_files(args.repo)
    for path in files:
        for sql in statements(read(args.repo, path)):
            if len(sql) > MAX_CHARS or not QUERY_START.match(sql) or sql in seen:
                continue
            seen.add(sql)
            found.append({"sql": sql, "src": path.removeprefix("test/sql/")})
    random.Random(12).shuffle(found)  # noqa: S311 (a reproducible sample, not a secret)
    corpus = []
    for item in found[: args.max_statements]:
        corpus.append(item)
        rewritten = rewrite(item["sql"])
        if rewritten and rewritten not in seen:
            seen.add(rewritten)
            corpus.append({"sql": rewritten, "src": item["src"], "rewritten": "1"})
    with gzip.open(args.output, "wt", encoding="utf-8", compresslevel=9) as out:
        for item in corpus:
            out.write(json.dumps(item, separators=(",", ":")) + "\n")
    print(f"{len(files)} test files, {len(found)} distinct queries, {len(corpus)} corpus statements")
    return 0


if __name__ == "__main__":
    sys.exit(main())

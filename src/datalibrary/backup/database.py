"""Copy the app database out and back in: SQLite's online backup API, PostgreSQL's
``pg_dump``/``pg_restore`` (custom format) run against a snapshot we also read the Iceberg
catalog from, so the manifest describes exactly the state that was dumped."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url

from datalibrary.errors import InvalidInput, Unavailable

SQLITE_FILE = "database.sqlite"
POSTGRES_FILE = "database.pgdump"
CATALOG_QUERY = "SELECT table_namespace, table_name, metadata_location FROM iceberg_tables"


def kind_of(url: str) -> str:
    return "sqlite" if make_url(url).get_backend_name() == "sqlite" else "postgresql"


def _libpq_env(url: str) -> dict[str, str]:
    """Connection settings for the PostgreSQL client tools, password in the environment only."""
    parsed = make_url(url)
    env = dict(os.environ)
    for key, value in (
        ("PGHOST", parsed.host),
        ("PGPORT", str(parsed.port) if parsed.port else None),
        ("PGUSER", parsed.username),
        ("PGPASSWORD", parsed.password),
        ("PGDATABASE", parsed.database),
    ):
        if value:
            env[key] = str(value)
    for name, value in parsed.query.items():
        if name == "sslmode":
            env["PGSSLMODE"] = str(value)
    return env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise Unavailable(
            f"'{name}' is not installed: install the PostgreSQL client (apt-get install postgresql-client)"
        )
    return path


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise Unavailable(f"{what} failed: {message[-1] if message else f'exit code {done.returncode}'}")


def _catalog_rows(rows) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    return [
        {"namespace": ns, "name": name, "metadata_location": location}
        for ns, name, location in sorted(rows)
        if location
    ]


def dump(engine: Engine, url: str, target: Path) -> tuple[str, list[dict[str, str]]]:
    """Write the database into ``target``; return the file name and the Iceberg catalog rows
    of exactly that state."""
    if kind_of(url) == "sqlite":
        source_path = make_url(url).database
        destination = target / SQLITE_FILE
        source = sqlite3.connect(str(source_path), timeout=30)
        copy = sqlite3.connect(str(destination))
        try:
            source.backup(copy)  # online: consistent even while the server writes
        finally:
            source.close()
        try:
            has_catalog = copy.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='iceberg_tables'"
            ).fetchone()
            rows = copy.execute(CATALOG_QUERY).fetchall() if has_catalog else []
        finally:
            copy.close()
        return SQLITE_FILE, _catalog_rows(rows)
    destination = target / POSTGRES_FILE
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            rows = (
                connection.execute(text(CATALOG_QUERY)).all()
                if inspect(connection).has_table("iceberg_tables")
                else []
            )
            _run(
                [
                    _tool("pg_dump"),
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--snapshot={snapshot}",
                    f"--file={destination}",
                ],
                _libpq_env(url),
                "pg_dump",
            )
    return POSTGRES_FILE, _catalog_rows(rows)


def is_empty(engine: Engine) -> bool:
    return not inspect(engine).get_table_names()


@contextmanager
def _no_connections(engine: Engine) -> Iterator[None]:
    engine.dispose()
    try:
        yield
    finally:
        engine.dispose()


def restore(engine: Engine, url: str, source: Path, file_name: str) -> None:
    """Load a dump into the (empty) database at ``url``."""
    if not is_empty(engine):
        raise InvalidInput(
            "the target database is not empty: restore into a new, empty database "
            "(create it, point DATALIBRARY_DATABASE_URL at it, and run 'datalibrary restore' again)"
        )
    dumped_kind = "sqlite" if file_name == SQLITE_FILE else "postgresql"
    if dumped_kind != kind_of(url):
        raise InvalidInput(
            f"this backup holds a {dumped_kind} database but the installation is configured for "
            f"{kind_of(url)}: restore into the same kind of database"
        )
    with _no_connections(engine):
        if dumped_kind == "sqlite":
            backup = sqlite3.connect(str(source / SQLITE_FILE))
            target = sqlite3.connect(str(make_url(url).database), timeout=30)
            try:
                backup.backup(target)
            finally:
                backup.close()
                target.close()
            return
        _run(
            [
                _tool("pg_restore"),
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                f"--dbname={make_url(url).database}",
                str(source / POSTGRES_FILE),
            ],
            _libpq_env(url),
            "pg_restore",
        )

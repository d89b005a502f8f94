"""Database: migrations on every backend, readiness, SQLite WAL mode."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import inspect, text

from datalibrary.db import Database, current_revisions, head_revisions, is_current, upgrade
from datalibrary.db.migrate import alembic_config, include_object
from datalibrary.db.models import Base


def test_migrations_build_every_table(database_url: str) -> None:
    db = Database(database_url)
    try:
        assert is_current(db.engine)
        tables = set(inspect(db.engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
    finally:
        db.dispose()


def test_downgrade_then_upgrade_round_trips(database_url: str) -> None:
    db = Database(database_url)
    try:
        command.downgrade(alembic_config(db.engine), "base")
        assert current_revisions(db.engine) == set()
        assert not is_current(db.engine)
        upgrade(db.engine)
        assert current_revisions(db.engine) == head_revisions()
    finally:
        db.dispose()


def test_migrations_match_the_models(database_url: str) -> None:
    """Autogenerate finds nothing to do: models and migrations agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    db = Database(database_url)
    try:
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"include_object": include_object})
            diff = compare_metadata(context, Base.metadata)
        assert diff == []
    finally:
        db.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with db.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        db.dispose()

"""Database: migrations on every backend, readiness, SQLite WAL mode."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, insert, inspect, text

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


def _sample_value(column: Any, stage: int) -> Any:
    """A value of the column's type, different per stage (so unique constraints hold)."""
    kind = column.type
    try:
        python_type = kind.python_type
    except NotImplementedError:
        python_type = str
    if python_type is bool:
        return stage % 2 == 0
    if python_type is int:
        return 1000 + stage
    if python_type is float:
        return 0.5 + stage
    if python_type is Decimal:
        return Decimal(stage) + Decimal("0.25")
    if python_type is datetime:
        return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=stage)
    if python_type is date:
        return date(2026, 1, 1) + timedelta(days=stage)
    if python_type is bytes:
        return b"b%d" % stage
    if python_type in (dict, list):
        return {"stage": stage}
    length = getattr(kind, "length", None) or 32
    return f"v{stage}x"[:length]


def _fill_every_table(engine: Any, stage: int) -> dict[str, int]:
    """One row in every table that exists now, parents first; foreign keys point at the
    parent row of this stage. Returns the row count per table."""
    metadata = MetaData()
    metadata.reflect(engine)
    inserted: dict[str, dict[str, Any]] = {}
    with engine.begin() as connection:
        for table in metadata.sorted_tables:
            if table.name == "alembic_version":
                continue
            row: dict[str, Any] = {}
            for column in table.columns:
                targets = [fk.column for fk in column.foreign_keys]
                if targets and targets[0].table.name in inserted:
                    row[column.name] = inserted[targets[0].table.name][targets[0].name]
                elif targets:
                    row[column.name] = None
                else:
                    row[column.name] = _sample_value(column, stage)
            connection.execute(insert(table).values(**row))
            inserted[table.name] = row
        return {
            name: connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one() for name in inserted
        }


def test_every_migration_round_trips_with_data_in_every_table(database_url: str) -> None:
    """Migrations meet real rows, not only empty tables: from base, each revision is applied to
    a database holding a row in every table that exists by then; then every revision is undone
    one at a time with the data still there, and the whole chain applied again."""
    db = Database(database_url)
    try:
        config = alembic_config(db.engine)
        command.downgrade(config, "base")
        script = ScriptDirectory.from_config(config)
        revisions = list(reversed(list(script.walk_revisions())))  # base first
        for stage, revision in enumerate(revisions, start=1):
            command.upgrade(config, revision.revision)
            counts = _fill_every_table(db.engine, stage)
            assert counts and all(count >= 1 for count in counts.values())
        assert current_revisions(db.engine) == head_revisions()
        assert set(Base.metadata.tables) <= set(counts), "at the head, every model's table holds rows"
        for revision in reversed(revisions):  # newest first; parallel branches each step down
            if revision.revision not in current_revisions(db.engine):
                continue  # already undone with a sibling branch
            down = revision.down_revision
            command.downgrade(config, down if isinstance(down, str) else "base")
        assert current_revisions(db.engine) == set()
        upgrade(db.engine)
        assert current_revisions(db.engine) == head_revisions()
    finally:
        db.dispose()

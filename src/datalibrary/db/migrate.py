"""Alembic migrations run programmatically: ``upgrade`` on start, ``is_current`` for /readyz.

Domains may add their own migration branches from ``0001``; we always upgrade to
*all* heads, so parallel branches need no merge revision until they must depend on each other.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Tables owned by other libraries in the same database (pyiceberg's SQL catalog).
FOREIGN_TABLE_PREFIXES = ("iceberg_",)


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Alembic filter: never manage tables that another library creates and migrates."""
    return not (
        type_ == "table"
        and reflected
        and compare_to is None
        and (name or "").startswith(FOREIGN_TABLE_PREFIXES)
    )


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "heads") -> None:
    command.upgrade(alembic_config(engine), revision)


def head_revisions() -> set[str]:
    script = ScriptDirectory.from_config(alembic_config(None))  # type: ignore[arg-type]
    return set(script.get_heads())


def current_revisions(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def is_current(engine: Engine) -> bool:
    return current_revisions(engine) == head_revisions()

"""App state: SQLAlchemy models, engine and session factory, Alembic migrations.

The migration helpers load Alembic on first use (``__getattr__``): most callers, the CLI's
data commands among them, only open sessions and should not pay for importing Alembic.
"""

from typing import Any

from datalibrary.db.engine import Database, make_engine

_MIGRATE = ("current_revisions", "head_revisions", "is_current", "upgrade")

__all__ = ["Database", "make_engine", *_MIGRATE]


def __getattr__(name: str) -> Any:
    if name in _MIGRATE:
        from datalibrary.db import migrate  # lazy: Alembic (~0.6 s); most callers only open sessions

        return getattr(migrate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

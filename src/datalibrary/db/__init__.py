"""App state: SQLAlchemy models, engine and session factory, Alembic migrations."""

from datalibrary.db.engine import Database, make_engine
from datalibrary.db.migrate import current_revisions, head_revisions, is_current, upgrade

__all__ = [
    "Database",
    "current_revisions",
    "head_revisions",
    "is_current",
    "make_engine",
    "upgrade",
]

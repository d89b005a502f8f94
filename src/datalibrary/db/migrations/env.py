"""Alembic environment: the engine comes from ``config.attributes`` (see db.migrate)."""

from alembic import context

from datalibrary.db.migrate import include_object
from datalibrary.db.models import Base

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()

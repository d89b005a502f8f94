"""lineage forwarding: the outbox state keyed by a digest of the endpoint, not its URL

The URL's path or query may be a credential (a TokenUrl); it was the primary key of
``lineage_forwarding``, so it sat in the database and in every backup of it. Existing rows are
re-keyed in place (their cursors kept); the downgrade cannot bring URLs back, so it leaves
the digests, and the older code starts a fresh cursor (delivery is at least once).

Revision ID: 2101_lineage_forwarding_keys
Revises: 2003_files_reads
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "2101_lineage_forwarding_keys"
down_revision = "2003_files_reads"
branch_labels = None
depends_on = None

PREFIX = "sha256:"


def upgrade() -> None:
    connection = op.get_bind()
    forwarding = sa.table("lineage_forwarding", sa.column("endpoint", sa.String(512)))
    for (endpoint,) in connection.execute(sa.select(forwarding.c.endpoint)).all():
        if endpoint.startswith(PREFIX):
            continue
        key = PREFIX + hashlib.sha256(endpoint.encode()).hexdigest()
        connection.execute(forwarding.update().where(forwarding.c.endpoint == endpoint).values(endpoint=key))


def downgrade() -> None:
    pass

"""task leases: background tasks run exactly once across replicas

Revision ID: 1701_ha
Revises: 0901
"""

import sqlalchemy as sa
from alembic import op

import datalibrary.db.base

revision = "1701_ha"
down_revision = "0901"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "task_leases",
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("acquired_at", datalibrary.db.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", datalibrary.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("task", name=op.f("pk_task_leases")),
    )


def downgrade() -> None:
    op.drop_table("task_leases")

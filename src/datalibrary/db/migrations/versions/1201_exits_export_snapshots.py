"""export requests: the workspace of a file export, the reason of a risk override

Revision ID: 1201_exits
Revises: 0901
"""

import sqlalchemy as sa
from alembic import op

revision = "1201_exits"
down_revision = "0901"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("export_requests") as batch:
        batch.add_column(sa.Column("workspace_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("override_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("export_requests") as batch:
        batch.drop_column("override_reason")
        batch.drop_column("workspace_id")

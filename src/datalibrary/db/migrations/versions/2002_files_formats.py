"""file collections: classification (documents), tier and tier approvals (genomic data)

Revision ID: 2002_files_formats
Revises: 2001_files
"""

import sqlalchemy as sa
from alembic import op

revision = "2002_files_formats"
down_revision = "2001_files"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("files_collections") as batch:
        batch.add_column(sa.Column("classification", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("tier", sa.String(length=16), nullable=False, server_default="standard"))
        batch.add_column(sa.Column("approved_grants", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("files_collections") as batch:
        batch.drop_column("approved_grants")
        batch.drop_column("tier")
        batch.drop_column("classification")

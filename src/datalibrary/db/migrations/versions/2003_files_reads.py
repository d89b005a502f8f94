"""file collections: metered reads

Revision ID: 2003_files_reads
Revises: 2002_files_formats
"""

import sqlalchemy as sa
from alembic import op

import datalibrary.db.base

revision = "2003_files_reads"
down_revision = "2002_files_formats"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "files_reads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(length=64), nullable=False),
        sa.Column("project", sa.String(length=64), nullable=True),
        sa.Column("collection", sa.String(length=130), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("via", sa.String(length=32), nullable=False),
        sa.Column("read_at", datalibrary.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_files_reads")),
    )
    op.create_index(op.f("ix_files_reads_user"), "files_reads", ["user"], unique=False)
    op.create_index(op.f("ix_files_reads_project"), "files_reads", ["project"], unique=False)
    op.create_index(op.f("ix_files_reads_read_at"), "files_reads", ["read_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_files_reads_read_at"), table_name="files_reads")
    op.drop_index(op.f("ix_files_reads_project"), table_name="files_reads")
    op.drop_index(op.f("ix_files_reads_user"), table_name="files_reads")
    op.drop_table("files_reads")

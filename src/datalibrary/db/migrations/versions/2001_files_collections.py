"""file collections: settings and quarantine

Revision ID: 2001_files
Revises: 1701_ha
"""

import sqlalchemy as sa
from alembic import op

import datalibrary.db.base

revision = "2001_files"
down_revision = "1701_ha"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "files_collections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("namespace", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("policy_name", sa.String(length=100), nullable=False),
        sa.Column("subject_template", sa.String(length=200), nullable=False),
        sa.Column("private_allow", sa.JSON(), nullable=False),
        sa.Column("burned_in_reviewed", sa.JSON(), nullable=False),
        sa.Column("created_at", datalibrary.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_files_collections")),
        sa.UniqueConstraint("namespace", "name", name="uq_files_collections_namespace_name"),
    )
    op.create_index(op.f("ix_files_collections_namespace"), "files_collections", ["namespace"], unique=False)
    op.create_table(
        "files_quarantine",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sealed_path", sa.String(length=1000), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", datalibrary.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_files_quarantine")),
    )
    op.create_index(
        op.f("ix_files_quarantine_collection_id"), "files_quarantine", ["collection_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_files_quarantine_collection_id"), table_name="files_quarantine")
    op.drop_table("files_quarantine")
    op.drop_index(op.f("ix_files_collections_namespace"), table_name="files_collections")
    op.drop_table("files_collections")

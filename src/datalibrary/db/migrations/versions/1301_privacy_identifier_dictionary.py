"""privacy: study-wide identifier dictionary (keyed digests of identifying words)

Revision ID: 1301_privacy
Revises: 0901
"""

import sqlalchemy as sa
from alembic import op

import datalibrary.db.base

revision = "1301_privacy"
down_revision = "0901"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "privacy_identifier_digests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("namespace", sa.String(length=200), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.Column("created_at", datalibrary.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_identifier_digests")),
        sa.UniqueConstraint("namespace", "digest", name="uq_privacy_identifier_digests"),
    )
    op.create_index(
        op.f("ix_privacy_identifier_digests_namespace"), "privacy_identifier_digests", ["namespace"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_privacy_identifier_digests_namespace"), table_name="privacy_identifier_digests")
    op.drop_table("privacy_identifier_digests")

"""package mirror: policy mode and allow/deny rules

Revision ID: 1601
Revises: 0901
"""

import sqlalchemy as sa
from alembic import op

import datalibrary.db.base

revision = "1601"
down_revision = "0901"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "package_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", datalibrary.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_package_policy")),
    )
    op.create_table(
        "package_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("specifier", sa.String(length=200), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", datalibrary.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_package_rules")),
        sa.UniqueConstraint("kind", "name", name="uq_package_rules_kind_name"),
    )
    with op.batch_alter_table("package_rules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_package_rules_name"), ["name"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("package_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_package_rules_name"))
    op.drop_table("package_rules")
    op.drop_table("package_policy")

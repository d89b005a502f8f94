"""costs: price versions, storage measurements, budgets and budget alerts

Revision ID: 0801
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import datalibrary.db.base

revision = "0801"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cost_budget_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("spent_cents", sa.BigInteger(), nullable=False),
        sa.Column("budget_cents", sa.BigInteger(), nullable=False),
        sa.Column("raised_at", datalibrary.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("enforce_after", datalibrary.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("enforced_at", datalibrary.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cleared_at", datalibrary.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cost_budget_alerts")),
        sa.UniqueConstraint("scope", "name", "month", "level", name="uq_cost_budget_alerts_level"),
    )
    with op.batch_alter_table("cost_budget_alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cost_budget_alerts_month"), ["month"], unique=False)

    op.create_table(
        "cost_budgets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", datalibrary.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cost_budgets")),
        sa.UniqueConstraint("scope", "name", name="uq_cost_budgets_scope_name"),
    )
    op.create_table(
        "cost_price_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("effective_from", datalibrary.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("prices", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", datalibrary.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cost_price_versions")),
        sa.UniqueConstraint("effective_from", name=op.f("uq_cost_price_versions_effective_from")),
    )
    op.create_table(
        "cost_storage_measurements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("resource", sa.String(length=200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("user", sa.String(length=64), nullable=False),
        sa.Column("project", sa.String(length=64), nullable=True),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("measured_at", datalibrary.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cost_storage_measurements")),
        sa.UniqueConstraint("kind", "resource", "day", name="uq_cost_storage_kind_resource_day"),
    )
    with op.batch_alter_table("cost_storage_measurements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cost_storage_measurements_day"), ["day"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cost_storage_measurements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cost_storage_measurements_day"))

    op.drop_table("cost_storage_measurements")
    op.drop_table("cost_price_versions")
    op.drop_table("cost_budgets")
    with op.batch_alter_table("cost_budget_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cost_budget_alerts_month"))

    op.drop_table("cost_budget_alerts")

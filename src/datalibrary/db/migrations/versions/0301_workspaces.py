"""workspaces

Revision ID: 0301
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import datalibrary.db.base

revision = "0301"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(length=64), nullable=True),
        sa.Column("product", sa.String(length=64), nullable=False),
        sa.Column("instance_type", sa.String(length=64), nullable=False),
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("provisioner", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=False),
        sa.Column("state_changed_at", datalibrary.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", datalibrary.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("idle_timeout_minutes", sa.Integer(), nullable=False),
        sa.Column("last_activity_at", datalibrary.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("idle_warning_at", datalibrary.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cpu_seconds", sa.Float(), nullable=True),
        sa.Column("cpu_sampled_at", datalibrary.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("provisioner_state", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_workspaces_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspaces")),
    )
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workspaces_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_workspaces_state"), ["state"], unique=False)

    op.create_table(
        "workspace_admin_access",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("admin_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("granted_at", datalibrary.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", datalibrary.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["admin_id"],
            ["users.id"],
            name=op.f("fk_workspace_admin_access_admin_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_workspace_admin_access_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspace_admin_access")),
    )
    with op.batch_alter_table("workspace_admin_access", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_workspace_admin_access_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "workspace_usage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(length=64), nullable=True),
        sa.Column("instance_type", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", datalibrary.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", datalibrary.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_workspace_usage_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspace_usage")),
    )
    with op.batch_alter_table("workspace_usage", schema=None) as batch_op:
        batch_op.create_index("ix_workspace_usage_open", ["workspace_id", "ended_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_workspace_usage_project"), ["project"], unique=False)
        batch_op.create_index(batch_op.f("ix_workspace_usage_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("workspace_usage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workspace_usage_user_id"))
        batch_op.drop_index(batch_op.f("ix_workspace_usage_project"))
        batch_op.drop_index("ix_workspace_usage_open")

    op.drop_table("workspace_usage")
    with op.batch_alter_table("workspace_admin_access", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workspace_admin_access_workspace_id"))

    op.drop_table("workspace_admin_access")
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workspaces_state"))
        batch_op.drop_index(batch_op.f("ix_workspaces_owner_id"))

    op.drop_table("workspaces")

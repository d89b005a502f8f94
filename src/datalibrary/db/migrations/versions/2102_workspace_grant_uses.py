"""workspaces: redeemed console grants, shared by every replica

A grant's "works once" was a dictionary in the memory of the process that redeemed it, so a
spent grant could be redeemed again on another replica (or after a restart) within its 60 s.

Revision ID: 2102_workspace_grant_uses
Revises: 2101_lineage_forwarding_keys
"""

import sqlalchemy as sa
from alembic import op

import datalibrary.db.base

revision = "2102_workspace_grant_uses"
down_revision = "2101_lineage_forwarding_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workspace_grant_uses",
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("expires_at", datalibrary.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_workspace_grant_uses")),
    )
    op.create_index(
        op.f("ix_workspace_grant_uses_expires_at"), "workspace_grant_uses", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_workspace_grant_uses_expires_at"), table_name="workspace_grant_uses")
    op.drop_table("workspace_grant_uses")

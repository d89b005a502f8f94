"""package rules name an ecosystem: Python (pip, uv) or R (install.packages())

Revision ID: 1602
Revises: 1601
"""

import sqlalchemy as sa
from alembic import op

revision = "1602"
down_revision = "1601"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("package_rules", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("ecosystem", sa.String(length=8), server_default="python", nullable=False)
        )
        batch_op.drop_constraint("uq_package_rules_kind_name", type_="unique")
        batch_op.create_unique_constraint(
            "uq_package_rules_ecosystem_kind_name", ["ecosystem", "kind", "name"]
        )


def downgrade() -> None:
    with op.batch_alter_table("package_rules", schema=None) as batch_op:
        batch_op.drop_constraint("uq_package_rules_ecosystem_kind_name", type_="unique")
        batch_op.create_unique_constraint("uq_package_rules_kind_name", ["kind", "name"])
        batch_op.drop_column("ecosystem")

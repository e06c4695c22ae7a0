"""Multi-VO: the registry of the VOs this instance serves

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 17:00:00

Each VO other than the default ``def`` has a catalogue of its own (core/vo.py); this table,
read in the default VO's catalogue, names them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vos",
        sa.Column("vo", sa.String(length=3), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("vo", name=op.f("pk_vos")),
    )


def downgrade() -> None:
    op.drop_table("vos")

"""requests_history and transfer_limits

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-03 08:00:00

Issue 18 (operations): every transfer attempt is kept with its source, destination, tool,
external id, timestamps, bytes and the tool's error text, so "why did it fail?" is answered
from the catalogue after the request itself has been retried or removed; and Rucio's
``/requests/transfer_limits`` has a table to live in.  Both tables are new: nothing to
backfill (attempts before this revision were not kept).
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "requests_history",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("request_type", sa.String(length=1), nullable=False),
        sa.Column("scope", sa.String(length=25), nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("dest_rse_id", sa.String(length=32), nullable=False),
        sa.Column("source_rse_id", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=1), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column("external_host", sa.String(length=255), nullable=True),
        sa.Column("retry_count", sa.Integer(), nullable=False),
        sa.Column("err_msg", sa.String(length=4000), nullable=True),
        sa.Column("rule_id", sa.String(length=32), nullable=True),
        sa.Column("activity", sa.String(length=50), nullable=True),
        sa.Column("bytes", sa.BigInteger(), nullable=True),
        sa.Column("dest_url", sa.String(length=2048), nullable=True),
        sa.Column("transfertool", sa.String(length=64), nullable=True),
        sa.Column("account", sa.String(length=25), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=True),
        sa.Column("requested_at", sa.DateTime(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(), nullable=True),
        sa.Column("transferred_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_requests_history")),
    )
    with op.batch_alter_table("requests_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_requests_history_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_requests_history_rule_id"), ["rule_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_requests_history_scope_name_dest_rse_id"),
            ["scope", "name", "dest_rse_id"],
            unique=False,
        )
    op.create_table(
        "transfer_limits",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("rse_expression", sa.String(length=3000), nullable=False),
        sa.Column("activity", sa.String(length=50), nullable=True),
        sa.Column("direction", sa.String(length=11), nullable=False),
        sa.Column("max_transfers", sa.BigInteger(), nullable=True),
        sa.Column("volume", sa.BigInteger(), nullable=True),
        sa.Column("deadline", sa.BigInteger(), nullable=True),
        sa.Column("strategy", sa.String(length=25), nullable=True),
        sa.Column("transfers", sa.BigInteger(), nullable=True),
        sa.Column("waitings", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfer_limits")),
        sa.UniqueConstraint(
            "rse_expression",
            "activity",
            "direction",
            name=op.f("uq_transfer_limits_rse_expression_activity_direction"),
        ),
    )


def downgrade() -> None:
    op.drop_table("transfer_limits")
    with op.batch_alter_table("requests_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_requests_history_scope_name_dest_rse_id"))
        batch_op.drop_index(batch_op.f("ix_requests_history_rule_id"))
        batch_op.drop_index(batch_op.f("ix_requests_history_created_at"))
    op.drop_table("requests_history")

"""requests remember their transfer job's key; the local transfer tool's state in the catalogue

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 08:00:00

``requests.external_key`` holds the key a transfer tool derives a job's id from (FTS: the
``sid`` of a deterministic job id).  A request whose submission went unanswered, and whose job
the tool did not know when asked, is sent again only under that key, so a late arrival of the
first submission is refused as a duplicate instead of copying the file a second time
(issue 15, defect 6).

``local_transfers`` holds the ``local`` tool's transfers, so a poller in another process (or on
another host) sees them, and a copy whose process died is found by its lease and run again
(issue 18, "transfers that work in every shape").
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_key", sa.String(length=64), nullable=True))
    op.create_table(
        "local_transfers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("chain", sa.String(length=64), nullable=False),
        sa.Column("hop_index", sa.Integer(), nullable=False),
        sa.Column("destination", sa.String(length=2048), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("canceled", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=4000), nullable=True),
        sa.Column("transferred_bytes", sa.BigInteger(), nullable=True),
        sa.Column("source_url", sa.String(length=2048), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_local_transfers")),
    )
    with op.batch_alter_table("local_transfers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_local_transfers_chain"), ["chain"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_local_transfers_state_claimed_until"), ["state", "claimed_until"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("local_transfers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_local_transfers_state_claimed_until"))
        batch_op.drop_index(batch_op.f("ix_local_transfers_chain"))
    op.drop_table("local_transfers")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("external_key")

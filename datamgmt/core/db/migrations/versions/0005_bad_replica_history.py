"""history: bad replica declarations' states and expiry, quarantined files, rules and usage history

Revision ID: 0005
Revises: 0002
Create Date: 2026-12-03 08:00:00

``bad_replicas`` rows move on (BAD → RECOVERED or LOST, TEMPORARY_UNAVAILABLE until
``expires_at``), as in Rucio, so they get ``updated_at`` and ``expires_at`` and an index for
the necromancer's scan by state.  ``quarantined_replicas`` records files on storage that no
replica names, as Rucio's ``POST /replicas/quarantine`` does.  ``rules_history`` keeps a
snapshot of a rule each time its state or lock counters change (``GET /rules/<id>/history``);
``account_usage_history`` and ``rse_usage_history`` keep the usage rows each time abacus sees
them changed (``GET /accounts/<a>/usage/history/<rse>``, ``GET /rses/<rse>/usage/history``).
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bad_replicas") as batch:
        batch.add_column(sa.Column("updated_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
        batch.create_index(op.f("ix_bad_replicas_state_rse_id"), ["state", "rse_id"])
    op.create_table(
        "quarantined_replicas",
        sa.Column("rse_id", sa.String(length=32), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("scope", sa.String(length=25), nullable=True),
        sa.Column("name", sa.String(length=250), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["rse_id"], ["rses.id"], name=op.f("fk_quarantined_replicas_rse_id_rses")),
        sa.PrimaryKeyConstraint("rse_id", "path", name=op.f("pk_quarantined_replicas")),
    )

    op.create_table(
        "rules_history",
        sa.Column("history_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account", sa.String(length=25), nullable=False),
        sa.Column("scope", sa.String(length=25), nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("did_type", sa.String(length=1), nullable=False),
        sa.Column("state", sa.String(length=1), nullable=False),
        sa.Column("error", sa.String(length=255), nullable=True),
        sa.Column("rse_expression", sa.String(length=3000), nullable=False),
        sa.Column("copies", sa.Integer(), nullable=False),
        sa.Column("locks_ok_cnt", sa.BigInteger(), nullable=False),
        sa.Column("locks_replicating_cnt", sa.BigInteger(), nullable=False),
        sa.Column("locks_stuck_cnt", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("history_id", name=op.f("pk_rules_history")),
    )
    op.create_index(op.f("ix_rules_history_id"), "rules_history", ["id"])
    op.create_index(op.f("ix_rules_history_scope_name"), "rules_history", ["scope", "name"])
    op.create_table(
        "account_usage_history",
        sa.Column("account", sa.String(length=25), nullable=False),
        sa.Column("rse_id", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("files", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account", "rse_id", "updated_at", name=op.f("pk_account_usage_history")),
    )
    op.create_table(
        "rse_usage_history",
        sa.Column("rse_id", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.Column("free", sa.BigInteger(), nullable=True),
        sa.Column("files", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("rse_id", "source", "updated_at", name=op.f("pk_rse_usage_history")),
    )


def downgrade() -> None:
    op.drop_table("rse_usage_history")
    op.drop_table("account_usage_history")
    op.drop_table("rules_history")
    op.drop_table("quarantined_replicas")
    with op.batch_alter_table("bad_replicas") as batch:
        batch.drop_index(op.f("ix_bad_replicas_state_rse_id"))
        batch.drop_column("expires_at")
        batch.drop_column("updated_at")

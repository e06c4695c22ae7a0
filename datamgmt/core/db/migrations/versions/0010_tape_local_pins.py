"""tape: archive times on requests and their history, the local tool's tape phases, pins and pin releases

Revision ID: 0010
Revises: 0003
Create Date: 2026-12-03 13:40:00

A request to tape shows when archiving started and when the file was confirmed on tape
(FTS's ``archive_start_time``/``archive_finish_time``); every attempt in ``requests_history``
keeps its staging and archiving times.  The ``local`` tool models tape itself: its transfers
get a timed phase (``phase_until``) and the same four times, ``local_pins`` is its "staged"
marker, and ``pin_releases`` queues the pins of removed staging rules for the finisher.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0003"
branch_labels = None
depends_on = None

TIMES = ("staging_started_at", "staging_finished_at", "archive_started_at", "archive_finished_at")


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("archive_started_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("archive_finished_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("requests_history") as batch:
        for name in TIMES:
            batch.add_column(sa.Column(name, sa.DateTime(), nullable=True))
    with op.batch_alter_table("local_transfers") as batch:
        batch.add_column(sa.Column("phase_until", sa.DateTime(), nullable=True))
        for name in TIMES:
            batch.add_column(sa.Column(name, sa.DateTime(), nullable=True))
    op.create_table(
        "local_pins",
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("pinned_until", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("url", name=op.f("pk_local_pins")),
    )
    op.create_table(
        "pin_releases",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=True),
        sa.Column("transfertool", sa.String(length=64), nullable=True),
        sa.Column("external_host", sa.String(length=255), nullable=True),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pin_releases")),
    )
    with op.batch_alter_table("pin_releases") as batch:
        batch.create_index(batch.f("ix_pin_releases_claimed_until"), ["claimed_until"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pin_releases") as batch:
        batch.drop_index(batch.f("ix_pin_releases_claimed_until"))
    op.drop_table("pin_releases")
    op.drop_table("local_pins")
    with op.batch_alter_table("local_transfers") as batch:
        for name in (*reversed(TIMES), "phase_until"):
            batch.drop_column(name)
    with op.batch_alter_table("requests_history") as batch:
        for name in reversed(TIMES):
            batch.drop_column(name)
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("archive_finished_at")
        batch.drop_column("archive_started_at")

"""requests remember the transfer tool's own state (tape phases STAGING, ARCHIVING) and staging times

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-03 08:00:00

A request SUBMITTED to FTS may spend hours staging from tape or waiting for its file to be
archived; the request history and the CLI show that phase from ``external_state``, which the
poller writes from each report, and the time spent staging from ``staging_started_at`` and
``staging_finished_at`` (Rucio's column names).
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("external_state", sa.String(32), nullable=True))
        batch.add_column(sa.Column("staging_started_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("staging_finished_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("staging_finished_at")
        batch.drop_column("staging_started_at")
        batch.drop_column("external_state")

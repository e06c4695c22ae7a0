"""requests remember their transfer job's key

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 08:00:00

``requests.external_key`` holds the key a transfer tool derives a job's id from (FTS: the
``sid`` of a deterministic job id).  A request whose submission went unanswered, and whose job
the tool did not know when asked, is sent again only under that key, so a late arrival of the
first submission is refused as a duplicate instead of copying the file a second time
(issue 15, defect 6).
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_key", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("external_key")

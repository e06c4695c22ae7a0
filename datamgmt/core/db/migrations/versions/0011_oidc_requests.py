"""browser logins through the OIDC identity provider

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 14:00:00

Rucio's authorization-code flow (``/auth/oidc``, ``/auth/oidc_redirect``, ``/auth/oidc_code``)
spans several requests, possibly on different workers: each login in progress is a row (issue 16).
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oidc_requests",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("access_hash", sa.String(length=64), nullable=False),
        sa.Column("fetch_hash", sa.String(length=64), nullable=True),
        sa.Column("account", sa.String(length=25), nullable=True),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("polling", sa.Boolean(), nullable=False),
        sa.Column("redirect_url", sa.String(length=4000), nullable=False),
        sa.Column("identity", sa.String(length=2048), nullable=True),
        sa.Column("expired_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_oidc_requests")),
        sa.UniqueConstraint("access_hash", name=op.f("uq_oidc_requests_access_hash")),
        sa.UniqueConstraint("fetch_hash", name=op.f("uq_oidc_requests_fetch_hash")),
    )
    op.create_index("ix_oidc_requests_expired_at", "oidc_requests", ["expired_at"])


def downgrade() -> None:
    op.drop_index("ix_oidc_requests_expired_at", table_name="oidc_requests")
    op.drop_table("oidc_requests")

"""OIDC token refresh: the provider's refresh tokens, sealed, with the sessions they renew

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 18:00:00

``/auth/oidc_refresh`` (issue 16) renews a session opened by an OIDC login with the provider's
refresh token. A login in progress carries it from ``/auth/oidc_code`` to the token fetch; the
session token then holds it, encrypted (core/oidc_refresh.py), until a refresh hands it on.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("oidc_requests") as batch:
        batch.add_column(sa.Column("refresh_token", sa.Text(), nullable=True))
        batch.add_column(sa.Column("refresh_lifetime", sa.Integer(), nullable=True))
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("refresh_token", sa.Text(), nullable=True))
        batch.add_column(sa.Column("refresh_until", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("successor", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("successor")
        batch.drop_column("refresh_until")
        batch.drop_column("refresh_token")
    with op.batch_alter_table("oidc_requests") as batch:
        batch.drop_column("refresh_lifetime")
        batch.drop_column("refresh_token")

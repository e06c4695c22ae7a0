"""DID followers, lifetime exceptions, run-time config, metadata conventions, content history, RSE QoS policies, open-data drafts, removed DIDs; DIDs by GUID

Revision ID: 0006
Revises: 0002
Create Date: 2026-12-03 08:00:00

Issue 16 serves Rucio's ``/dids/.../follow``, ``/lifetime_exceptions``, ``/config`` and
``/meta_conventions`` and ``/dids/<did>/dids/history``; each keeps its state in a table of Rucio's name and shape. The GUID
lookup (``GET /dids/<guid>/guid``) needs ``dids.guid`` indexed.
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0009"
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column[Any]]:
    return [
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    ]


def upgrade() -> None:
    with op.batch_alter_table("dids", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dids_guid"), ["guid"], unique=False)

    op.create_table(
        "dids_followed",
        sa.Column("scope", sa.String(length=25), nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("account", sa.String(length=25), nullable=False),
        sa.Column("did_type", sa.String(length=1), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["account"], ["accounts.account"], name=op.f("fk_dids_followed_account_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["scope", "name"],
            ["dids.scope", "dids.name"],
            name=op.f("fk_dids_followed_scope_dids"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("scope", "name", "account", name=op.f("pk_dids_followed")),
    )
    with op.batch_alter_table("dids_followed", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dids_followed_account"), ["account"], unique=False)

    op.create_table(
        "lifetime_except",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=25), nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("did_type", sa.String(length=1), nullable=False),
        sa.Column("account", sa.String(length=25), nullable=False),
        sa.Column("pattern", sa.String(length=255), nullable=True),
        sa.Column("comments", sa.String(length=4000), nullable=True),
        sa.Column("state", sa.String(length=1), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["account"], ["accounts.account"], name=op.f("fk_lifetime_except_account_accounts")
        ),
        sa.PrimaryKeyConstraint("id", "scope", "name", name=op.f("pk_lifetime_except")),
    )
    with op.batch_alter_table("lifetime_except", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lifetime_except_scope_name_state"), ["scope", "name", "state"], unique=False
        )

    op.create_table(
        "configs",
        sa.Column("section", sa.String(length=128), nullable=False),
        sa.Column("opt", sa.String(length=128), nullable=False),
        sa.Column("value", sa.String(length=4000), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("section", "opt", name=op.f("pk_configs")),
    )

    op.create_table(
        "did_keys",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("is_enum", sa.Boolean(), nullable=False),
        sa.Column("key_type", sa.String(length=16), nullable=False),
        sa.Column("value_type", sa.String(length=255), nullable=True),
        sa.Column("value_regexp", sa.String(length=255), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_did_keys")),
    )
    op.create_table(
        "did_key_map",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(["key"], ["did_keys.key"], name=op.f("fk_did_key_map_key_did_keys")),
        sa.PrimaryKeyConstraint("key", "value", name=op.f("pk_did_key_map")),
    )

    op.create_table(
        "contents_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(length=25), nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("child_scope", sa.String(length=25), nullable=False),
        sa.Column("child_name", sa.String(length=250), nullable=False),
        sa.Column("did_type", sa.String(length=1), nullable=False),
        sa.Column("child_type", sa.String(length=1), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=True),
        sa.Column("adler32", sa.String(length=8), nullable=True),
        sa.Column("md5", sa.String(length=32), nullable=True),
        *_timestamps(),
        sa.Column("deleted_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contents_history")),
    )
    with op.batch_alter_table("contents_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contents_history_scope_name"), ["scope", "name"], unique=False)

    op.create_table(
        "rse_qos_map",
        sa.Column("rse_id", sa.String(length=32), nullable=False),
        sa.Column("qos_policy", sa.String(length=64), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(["rse_id"], ["rses.id"], name=op.f("fk_rse_qos_map_rse_id_rses")),
        sa.PrimaryKeyConstraint("rse_id", "qos_policy", name=op.f("pk_rse_qos_map")),
    )

    op.create_table(
        "opendata_drafts",
        sa.Column("scope", sa.String(length=25), nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("account", sa.String(length=25), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["account"], ["accounts.account"], name=op.f("fk_opendata_drafts_account_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["scope", "name"],
            ["dids.scope", "dids.name"],
            name=op.f("fk_opendata_drafts_scope_dids"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("scope", "name", name=op.f("pk_opendata_drafts")),
    )

    op.create_table(
        "deleted_dids",
        sa.Column("scope", sa.String(length=25), nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("account", sa.String(length=25), nullable=False),
        sa.Column("did_type", sa.String(length=1), nullable=False),
        sa.Column("is_open", sa.Boolean(), nullable=True),
        sa.Column("monotonic", sa.Boolean(), nullable=False),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("obsolete", sa.Boolean(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=True),
        sa.Column("is_new", sa.Boolean(), nullable=True),
        sa.Column("availability", sa.String(length=1), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=True),
        sa.Column("length", sa.BigInteger(), nullable=True),
        sa.Column("md5", sa.String(length=32), nullable=True),
        sa.Column("adler32", sa.String(length=8), nullable=True),
        sa.Column("guid", sa.String(length=32), nullable=True),
        sa.Column("events", sa.BigInteger(), nullable=True),
        sa.Column("expired_at", sa.DateTime(), nullable=True),
        sa.Column("purge_replicas", sa.Boolean(), nullable=False),
        sa.Column("accessed_at", sa.DateTime(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("scope", "name", name=op.f("pk_deleted_dids")),
    )
    with op.batch_alter_table("deleted_dids", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deleted_dids_deleted_at"), ["deleted_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deleted_dids", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deleted_dids_deleted_at"))
    op.drop_table("deleted_dids")
    op.drop_table("opendata_drafts")
    op.drop_table("rse_qos_map")
    with op.batch_alter_table("contents_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contents_history_scope_name"))
    op.drop_table("contents_history")
    op.drop_table("did_key_map")
    op.drop_table("did_keys")
    op.drop_table("configs")
    with op.batch_alter_table("lifetime_except", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lifetime_except_scope_name_state"))
    op.drop_table("lifetime_except")
    with op.batch_alter_table("dids_followed", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dids_followed_account"))
    op.drop_table("dids_followed")
    with op.batch_alter_table("dids", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dids_guid"))

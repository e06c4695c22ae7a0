"""Alembic: empty → head → base → head on the test database, and the schema matches the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from datamgmt.core.db.migrate import downgrade, upgrade
from datamgmt.core.db.models import Base
from datamgmt.core.db.session import get_engine


def test_downgrade_and_upgrade_again(db_url):
    engine = get_engine(db_url)
    downgrade(db_url, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(db_url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())


def test_migrations_match_models(db_url):
    with get_engine(db_url).connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        assert compare_metadata(context, Base.metadata) == []

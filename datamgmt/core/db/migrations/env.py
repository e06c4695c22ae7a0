"""Alembic environment: migrates the catalogue at the URL the caller configured."""

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext

from datamgmt.core.db.models import Base
from datamgmt.core.db.session import get_engine
from datamgmt.core.db.types import Code

config = context.config
url = config.get_main_option("sqlalchemy.url") or None


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render coded enums as the plain strings they are stored as, keeping migrations self-contained."""
    if type_ == "type" and isinstance(obj, Code):
        return f"sa.String(length={obj.length})"  # a TypeDecorator reads through to its String
    return False


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = get_engine(url)
    with engine.connect() as connection:
        # SQLite cannot ALTER most things: batch mode rebuilds tables instead.
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            render_item=render_item,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

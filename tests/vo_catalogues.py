"""A multi-VO instance for tests: ``[common] multi_vo`` on, and no VO catalogue left behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from datamgmt.config import reset_config
from datamgmt.core import vo as vos
from datamgmt.core.db.session import dispose_engines, get_engine


def drop_vo_catalogues(url: str) -> None:
    """Remove every VO catalogue a test made (a VO cannot be removed over the API)."""
    vos._known.clear()
    if get_engine(url).dialect.name == "postgresql":
        with get_engine(url).begin() as connection:
            names = connection.scalars(
                text("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'vo\\_%'")
            ).all()
            for name in names:
                connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        dispose_engines()
        return
    dispose_engines()
    database = Path(str(make_url(url).database))
    for path in database.parent.glob(f"{database.stem}.vo-*"):
        path.unlink()


@pytest.fixture
def multi_vo(db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("DATAMGMT_COMMON_MULTI_VO", "true")
    reset_config()
    drop_vo_catalogues(db)
    yield db
    drop_vo_catalogues(db)
    monkeypatch.delenv("DATAMGMT_COMMON_MULTI_VO")
    reset_config()

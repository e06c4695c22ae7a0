"""A daemon process serves every VO, each in its own catalogue, and finds VOs added later."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from datamgmt.core import did, scope
from datamgmt.core import vo as vos
from datamgmt.core.db.models import DataIdentifier
from datamgmt.core.db.session import transaction
from datamgmt.core.db.types import utcnow
from datamgmt.daemons.common import CatalogueWatch, Runner
from datamgmt.daemons.undertaker import Undertaker
from tests.vo_catalogues import multi_vo  # noqa: F401 (a fixture)


def _expired_dataset(session: Session, name: str) -> None:
    scope.add_scope(session, "data", "root")
    did.add_collection(session, "data", name, "DATASET", "root")
    session.execute(
        update(DataIdentifier)
        .where(DataIdentifier.name == name)
        .values(expired_at=utcnow() - timedelta(minutes=1))
    )


def _names(url: str) -> set[str]:
    with transaction(url, read_only=True) as session:
        return set(session.scalars(select(DataIdentifier.name)))


def test_one_daemon_process_serves_each_vo_in_its_catalogue(
    multi_vo: str, session: Session, root: str
) -> None:  # noqa: F811
    watch = CatalogueWatch(multi_vo)
    assert watch.new() == ["def"]
    vos.add_vo(session, "abc", "A VO", None, "root", multi_vo)
    _expired_dataset(session, "expired-in-def")
    session.commit()
    abc = vos.catalogue_url(multi_vo, "abc")
    with transaction(abc) as vo_session:
        _expired_dataset(vo_session, "expired-in-abc")
        did.add_collection(vo_session, "data", "expired-in-def", "DATASET", "root")  # same name, not expired
    watch.next_look = 0.0  # as after VO_POLL_SECONDS
    assert watch.new() == ["abc"]
    assert watch.new() == []

    Runner(Undertaker, once=True, db_url=multi_vo).run()

    assert _names(multi_vo) == set()
    assert _names(abc) == {"expired-in-def"}

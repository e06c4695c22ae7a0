"""One-row reads on a bare cursor (``core/db/point_reads.py``): the same answer as through the
session, no transaction of their own, and every failure still the session's failure."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, event, select, text
from sqlalchemy.pool import PoolResetState

from datamgmt.core import did, scope
from datamgmt.core.db.constants import DIDAvailability, DIDType
from datamgmt.core.db.models import DataIdentifier
from datamgmt.core.db.point_reads import PointRead
from datamgmt.core.db.session import get_engine, transaction
from datamgmt.exceptions import DataIdentifierNotFound, InputValidationError

_STATE = PointRead(
    select(
        DataIdentifier.name,
        DataIdentifier.did_type,
        DataIdentifier.availability,
        DataIdentifier.is_open,
        DataIdentifier.created_at,
    ).where(DataIdentifier.scope == bindparam("scope"), DataIdentifier.name == bindparam("name"))
)


def _dataset(db: str, root: str) -> None:
    with transaction(db) as session:
        scope.add_scope(session, "data", root)
        did.add_collection(session, "data", "ds", "DATASET", root)


def test_a_bare_read_converts_as_the_session_does(db: str, root: str) -> None:
    """Enums, booleans and times come back typed on both databases (SQLite stores times as text)."""
    _dataset(db, root)
    with transaction(db, read_only=True) as session:
        bare = _STATE.first(session, scope="data", name="ds")
        assert not session.in_transaction(), "the bare cursor did not use the unit's connection"
        through_session = session.execute(_STATE.statement, {"scope": "data", "name": "ds"}).one()
    assert tuple(bare) == tuple(through_session)
    assert (bare.did_type, bare.availability, bare.is_open) == (
        DIDType.DATASET,
        DIDAvailability.AVAILABLE,
        True,
    )


def test_get_did_answers_the_same_in_every_kind_of_unit(db: str, root: str) -> None:
    _dataset(db, root)
    with transaction(db, read_only=True) as session:
        bare = did.get_did(session, "data", "ds")
    with transaction(db) as session:
        in_a_writer = did.get_did(session, "data", "ds")
    assert bare == in_a_writer
    assert bare["type"] == "DATASET" and bare["open"] is True


def test_a_unit_that_writes_reads_its_own_changes(db: str, root: str) -> None:
    """A writer's uncommitted row is invisible to any other connection: the read must be its own."""
    with transaction(db) as session:
        scope.add_scope(session, "data", root)
        did.add_collection(session, "data", "fresh", "DATASET", root)
        assert _STATE.first(session, scope="data", name="fresh").name == "fresh"
        session.rollback()


def test_a_read_only_unit_already_begun_reads_in_its_transaction(db: str, root: str) -> None:
    _dataset(db, root)
    with transaction(db, read_only=True) as session:
        session.execute(text("SELECT 1"))
        assert session.in_transaction()
        assert _STATE.first(session, scope="data", name="ds").name == "ds"


def test_a_missing_row_is_none(db: str, root: str) -> None:
    with transaction(db, read_only=True) as session:
        assert _STATE.first(session, scope="data", name="absent") is None
        with pytest.raises(DataIdentifierNotFound):
            did.get_did(session, "data", "absent")


def test_a_refused_value_fails_as_through_the_session_and_keeps_the_connection(db: str, root: str) -> None:
    """PostgreSQL refuses a NUL byte in text: the bare cursor's error is not translated there,
    the session runs the read again and fails as any statement does (bad input, not a 500),
    and the pooled connection, still sound, is not thrown away."""
    if not db.startswith("postgresql"):
        pytest.skip("SQLite stores a NUL byte")
    _dataset(db, root)
    invalidated: list[object] = []
    event.listen(get_engine(db).pool, "invalidate", lambda *args: invalidated.append(args))
    with pytest.raises(InputValidationError), transaction(db, read_only=True) as session:
        did.get_did(session, "data", "bad\x00name")
    assert not invalidated


def test_a_connection_the_server_dropped_is_replaced(db: str, root: str) -> None:
    """A pooled connection whose backend was terminated while idle: the read still answers."""
    if not db.startswith("postgresql"):
        pytest.skip("terminating a backend is PostgreSQL's")
    _dataset(db, root)
    with transaction(db, read_only=True) as session:
        assert did.get_did(session, "data", "ds")["name"] == "ds"
    with transaction(db) as session:
        session.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND backend_type = 'client backend' AND state = 'idle'"
            )
        )
    with transaction(db, read_only=True) as session:
        assert did.get_did(session, "data", "ds")["name"] == "ds"


def test_a_parameter_that_needs_conversion_is_refused(db: str) -> None:
    kind = bindparam("kind", type_=DataIdentifier.did_type.type)
    typed = PointRead(select(DataIdentifier.name).where(DataIdentifier.did_type == kind))
    with pytest.raises(TypeError, match="kind"), transaction(db, read_only=True) as session:
        typed.first(session, kind=DIDType.FILE)


def test_metadata_of_one_did_reads_the_same_bare_and_in_a_writer(db: str, root: str) -> None:
    """``PointRead.all`` (one DID's metadata keys): numbers typed as the session types them
    (PostgreSQL's NUMERIC needs the type the cursor describes), and a writer sees its own keys."""
    from datamgmt.core.metadata import get_metadata, set_metadata

    _dataset(db, root)
    with transaction(db) as session:
        set_metadata(session, "data", "ds", "run", 7)
        set_metadata(session, "data", "ds", "energy", 13.6)
        assert get_metadata(session, "data", "ds", "JSON") == {"run": 7, "energy": 13.6}
    with transaction(db, read_only=True) as session:
        bare = get_metadata(session, "data", "ds", "JSON")
        assert not session.in_transaction(), "the bare cursor did not use the unit's connection"
    assert bare == {"run": 7, "energy": 13.6}
    assert isinstance(bare["run"], int) and isinstance(bare["energy"], float)


def test_a_bare_read_gives_its_connection_back_without_a_rollback(db: str, root: str) -> None:
    """Nothing ran in a transaction, so the pool's rollback on return is skipped, as SQLAlchemy's
    own connection skips it once its transaction has ended; the connection still comes back."""
    _dataset(db, root)
    engine = get_engine(db)
    resets: list[bool] = []

    def on_reset(_dbapi_connection: object, _record: object, state: PoolResetState) -> None:
        resets.append(state.transaction_was_reset)

    event.listen(engine, "reset", on_reset)
    try:
        with transaction(db, read_only=True) as session:
            assert _STATE.first(session, scope="data", name="ds") is not None
    finally:
        event.remove(engine, "reset", on_reset)
    assert resets == [True], resets
    assert engine.pool.checkedout() == 0

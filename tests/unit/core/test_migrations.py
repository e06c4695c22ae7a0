"""Alembic: empty → head → base → head on the test database, and the schema matches the models."""

from __future__ import annotations

import pytest
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


def _catalogue_at_0001(url: str, replicas: list[tuple[str, str, str | None]]) -> dict[str, str]:
    """Downgrade to 0001 and write replicas (rse, name, path) as 0001 allowed: NULL or any path."""
    from sqlalchemy import insert

    from datamgmt.core import did, rse, scope
    from datamgmt.core.account import add_account
    from datamgmt.core.db.constants import ReplicaState
    from datamgmt.core.db.models import Replica
    from datamgmt.core.db.session import transaction
    from datamgmt.core.db.types import utcnow

    downgrade(url, "0001")
    with transaction(url) as session:
        add_account(session, "alice", "USER")
        scope.add_scope(session, "alice", "alice")
        rse.add_rse(session, "HASHED")
        rse.add_rse(session, "NAMED")
        rse.add_rse_attribute(session, "NAMED", "lfn2pfn_algorithm", "identity")
        rse.add_rse(session, "TAPE", deterministic=False)
        ids = {name: rse.get_rse_id(session, name) for name in ("HASHED", "NAMED", "TAPE")}
        names = sorted({name for _, name, _ in replicas})
        did.add_files(
            session,
            [{"scope": "alice", "name": n, "bytes": 1, "adler32": "00000001"} for n in names],
            "alice",
        )
        now = utcnow()
        session.execute(
            insert(Replica.__table__),
            [
                {
                    "scope": "alice",
                    "name": name,
                    "rse_id": ids[rse_name],
                    "bytes": 1,
                    "path": path,
                    "lock_cnt": 0,
                    "state": ReplicaState.AVAILABLE,
                    "delete_failures": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for rse_name, name, path in replicas
            ],
        )
    return ids


@pytest.mark.corrupts_catalogue("rse_usage")  # replicas written as raw rows, as a 0001 catalogue held them
def test_upgrade_to_0002_gives_every_replica_its_path(db):
    from sqlalchemy import select

    from datamgmt.core.db.models import Replica
    from datamgmt.core.db.session import transaction
    from datamgmt.rse.lfn2pfn import hash_path

    ids = _catalogue_at_0001(
        db,
        [
            ("HASHED", "plain", None),
            ("HASHED", "chosen", hash_path("alice", "plain")),  # the attack's state: two rows, one file
            ("NAMED", "plain", None),
            ("TAPE", "plain", "/run1/plain"),
            ("TAPE", "chosen", None),
        ],
    )
    upgrade(db)
    with transaction(db, read_only=True) as session:
        paths = {
            (rse_id, name): path
            for rse_id, name, path in session.execute(select(Replica.rse_id, Replica.name, Replica.path))
        }
    assert paths == {
        (ids["HASHED"], "plain"): hash_path("alice", "plain"),
        (ids["HASHED"], "chosen"): hash_path("alice", "chosen"),
        (ids["NAMED"], "plain"): "alice/plain",
        (ids["TAPE"], "plain"): "run1/plain",
        (ids["TAPE"], "chosen"): hash_path("alice", "chosen"),
    }


@pytest.mark.corrupts_catalogue("rse_usage")  # replicas written as raw rows, as a 0001 catalogue held them
def test_upgrade_to_0002_stops_on_replicas_sharing_a_path(db):
    import pytest
    from sqlalchemy import delete

    from datamgmt.core.db.models import Replica
    from datamgmt.core.db.session import transaction

    _catalogue_at_0001(db, [("TAPE", "one", "/run1/f"), ("TAPE", "two", "run1/f")])
    with pytest.raises(RuntimeError, match="replicas share a storage path.*'run1/f' \\(2 replicas\\)"):
        upgrade(db)
    with transaction(db) as session:
        session.execute(delete(Replica).where(Replica.name == "two"))
    upgrade(db)

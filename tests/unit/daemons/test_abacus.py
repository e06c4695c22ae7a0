"""abacus: every queued delta is counted exactly once into the usage tables, by any number of instances."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import func, insert, select

from datamgmt.core import did, replica, rse, scope
from datamgmt.core.db.models import RSE, AccountUsage, RSEUsage, UpdatedAccountCounter, UpdatedRSECounter
from datamgmt.daemons.abacus import Abacus
from tests.integration.daemons.catalogue import run_daemon

ON_POSTGRESQL = os.environ.get("DATAMGMT_TEST_DB_URL", "").startswith("postgresql")


def usage(session, rse_name: str, source: str = "rucio") -> tuple[int, int] | None:
    row = session.execute(
        select(RSEUsage.files, RSEUsage.used)
        .join_from(RSEUsage, RSE, RSEUsage.rse_id == RSE.id)
        .where(RSE.rse == rse_name, RSEUsage.source == source)
    ).one_or_none()
    session.rollback()
    return None if row is None else tuple(row)


def queued(session, model) -> int:
    count = session.scalar(select(func.count()).select_from(model))
    session.rollback()
    return count


@pytest.fixture
def sites(session, root):
    scope.add_scope(session, "data", "root")
    for name in ("SITE-A", "SITE-B"):
        rse.add_rse(session, name)
    ids = {name: rse.get_rse_id(session, name) for name in ("SITE-A", "SITE-B")}
    session.commit()
    return ids


def drain(abacus: Abacus, batch: int) -> None:
    while abacus.run_once(batch):
        pass
    assert abacus.idle


@pytest.mark.corrupts_catalogue("rse_usage")  # a removal delta without the removal
def test_registered_and_removed_replicas_fold_into_rucio_usage(session, sites):
    files = [{"scope": "data", "name": f"f{i}", "bytes": 100 + i, "adler32": "0000000a"} for i in range(30)]
    did.add_files(session, files, "root")
    replica.add_replicas(session, "SITE-A", files[:20], "root")
    replica.add_replicas(session, "SITE-B", files[20:], "root")
    replica.record_rse_delta(session, sites["SITE-A"], -2, -201)
    rse.set_rse_usage(session, "SITE-A", "storage", used=5, free=7)
    session.commit()
    assert queued(session, UpdatedRSECounter) == 3

    drain(Abacus("a"), batch=2)

    assert usage(session, "SITE-A") == (18, sum(100 + i for i in range(20)) - 201)
    assert usage(session, "SITE-B") == (10, sum(100 + i for i in range(20, 30)))
    assert usage(session, "SITE-A", "storage") == (0, 5)  # other sources untouched
    assert queued(session, UpdatedRSECounter) == 0


@pytest.mark.corrupts_catalogue("account_usage")  # usage and deltas without locks
def test_account_deltas_fold_into_existing_and_new_usage_rows(session, sites):
    session.add(AccountUsage(account="root", rse_id=sites["SITE-A"], files=5, bytes=500))
    session.execute(
        insert(UpdatedAccountCounter),
        [
            {"account": "root", "rse_id": sites["SITE-A"], "files": 1, "bytes": 10},
            {"account": "root", "rse_id": sites["SITE-A"], "files": -3, "bytes": -300},
            {"account": "root", "rse_id": sites["SITE-B"], "files": 4, "bytes": 40},
        ],
    )
    session.commit()

    drain(Abacus("a"), batch=1000)

    rows = {u.rse_id: (u.files, u.bytes) for u in session.scalars(select(AccountUsage))}
    assert rows == {sites["SITE-A"]: (3, 210), sites["SITE-B"]: (4, 40)}
    assert queued(session, UpdatedAccountCounter) == 0


def test_nothing_queued_is_idle(session, sites):
    abacus = Abacus("a")
    assert abacus.run_once(10) == 0
    assert abacus.idle


@pytest.mark.skipif(
    not ON_POSTGRESQL, reason="DATAMGMT_TEST_DB_URL is unset: concurrent instances need PostgreSQL"
)
@pytest.mark.corrupts_catalogue("rse_usage")  # deltas without replicas
def test_two_instances_count_every_delta_once(db, session, sites):
    deltas = [{"rse_id": sites["SITE-A" if i % 3 else "SITE-B"], "files": 1, "bytes": i} for i in range(6000)]
    session.execute(insert(UpdatedRSECounter), deltas)
    session.commit()

    workers = [run_daemon(db, "abacus", "--run-once", "--batch-size", "50") for _ in range(2)]
    for worker in workers:
        _, stderr = worker.communicate(timeout=120)
        assert worker.returncode == 0, stderr

    expected = {}
    for d in deltas:
        files, size = expected.get(d["rse_id"], (0, 0))
        expected[d["rse_id"]] = (files + 1, size + d["bytes"])
    assert usage(session, "SITE-A") == expected[sites["SITE-A"]]
    assert usage(session, "SITE-B") == expected[sites["SITE-B"]]
    assert queued(session, UpdatedRSECounter) == 0

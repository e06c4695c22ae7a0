"""A daemon whose PostgreSQL backend is terminated in the middle of a batch goes on by itself.

The fault is injected at a precise point: just before the judge-evaluator's first
``INSERT INTO locks`` (half-way through an item's transaction), its backend is terminated
with ``pg_terminate_backend`` and the statement then meets a dead connection.  The worker
must roll back, log a WARNING, give the batch's leases back and finish everything on the
next cycle, long before the leases (120 s) would have expired, without being restarted.
"""

from __future__ import annotations

import logging
import os
import threading
import time

import pytest
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.engine import make_url

from datamgmt.core import did_content, rule
from datamgmt.core.db.constants import LockState
from datamgmt.core.db.models import Lock, UpdatedDID
from datamgmt.core.db.session import get_engine
from datamgmt.daemons.common import work
from datamgmt.daemons.judge.evaluator import Evaluator
from tests.integration.daemons.catalogue import (
    base,
    datasets,
    files_with_source,
    one_request_per_replicating_lock,
)
from tests.invariants import check_invariants

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not os.environ.get("DATAMGMT_TEST_DB_URL", "").startswith("postgresql"),
        reason="DATAMGMT_TEST_DB_URL is unset: terminating backends needs PostgreSQL",
    ),
]

DATASETS, FILES_EACH = 6, 10


def test_an_evaluator_whose_backend_is_killed_mid_batch_goes_on_and_finishes(db_url, session, root, caplog):
    base(session)
    names = datasets(session, "ds", DATASETS)
    for name in names:
        rule.add_rule(session, [{"scope": "data", "name": name}], "root", 1, "SITE-A")
    files = files_with_source(session, "f", DATASETS * FILES_EACH)
    for index, name in enumerate(names):
        chunk = files[index * FILES_EACH : (index + 1) * FILES_EACH]
        did_content.attach(session, "data", name, [{"scope": "data", "name": f["name"]} for f in chunk])
    session.commit()

    daemon_url = make_url(db_url).update_query_dict({"application_name": "datamgmt-drops-evaluator"})
    daemon_url_text = daemon_url.render_as_string(hide_password=False)
    admin = create_engine(db_url, isolation_level="AUTOCOMMIT")
    killed: list[int] = []

    def kill_before_first_lock_insert(conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if killed or not statement.lstrip().upper().startswith("INSERT INTO LOCKS"):
            return
        pid = conn.connection.dbapi_connection.info.backend_pid
        killed.append(pid)
        with admin.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            deadline = time.monotonic() + 10
            while other.execute(
                text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            ).first():
                assert time.monotonic() < deadline
                time.sleep(0.02)

    event.listen(get_engine(daemon_url_text), "before_cursor_execute", kill_before_first_lock_insert)
    daemon = Evaluator("drops-evaluator", db_url=daemon_url_text)
    stop = threading.Event()
    caplog.set_level(logging.INFO, logger="datamgmt.daemons")
    worker = threading.Thread(
        target=work, args=(daemon, stop), kwargs={"batch": 100, "once": False, "sleep_max": 1}
    )
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while session.scalar(select(func.count()).select_from(UpdatedDID)) or not killed:
            assert worker.is_alive(), "the daemon stopped"
            assert time.monotonic() < deadline, "the work was not finished after the connection was lost"
            session.rollback()
            time.sleep(0.2)
        assert worker.is_alive()
    finally:
        stop.set()
        worker.join(timeout=30)
        admin.dispose()

    assert len(killed) == 1
    session.rollback()
    locks = session.scalar(select(func.count()).select_from(Lock).where(Lock.state == LockState.REPLICATING))
    assert locks == DATASETS * FILES_EACH
    check_invariants(session)
    one_request_per_replicating_lock(session)
    records = [r for r in caplog.records if r.name.startswith("datamgmt.daemons")]
    assert [r.getMessage() for r in records if r.levelno == logging.WARNING] == [
        "batch failed, retried next cycle"
    ]
    assert not [r for r in records if r.levelno >= logging.ERROR]

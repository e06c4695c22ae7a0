"""A small catalogue for rule tests: account ``jdoe`` (unlimited on every RSE unless a test
says otherwise), scope ``mock``, RSEs R1..R4 tagged like Rucio's rule tests (T1 on R1, R2,
R4; T2 on R3; ``fakeweight`` 10, 0, 0, 0), and helpers to make files and datasets."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from datamgmt.core import deletion, did_content, inflight, quota
from datamgmt.core import did as did_core
from datamgmt.core.account import add_account
from datamgmt.core.db.models import Lock, Replica, Rule
from datamgmt.core.db.session import transaction
from datamgmt.core.replica import add_replicas, set_tombstone
from datamgmt.core.rse import add_rse, add_rse_attribute
from datamgmt.core.scope import add_scope
from datamgmt.core.workqueue import WorkQueue

RSES = ("R1", "R2", "R3", "R4")
_counter = itertools.count()


@dataclass
class Catalogue:
    session: Session
    rse_ids: dict[str, str] = field(default_factory=dict)

    def files(self, n: int, size: int = 100, on: Sequence[str] = ("R1",)) -> list[dict]:
        """``n`` new files of ``size`` bytes with AVAILABLE replicas on ``on``."""
        files = [
            {"scope": "mock", "name": f"file_{next(_counter)}", "bytes": size, "adler32": "0cc737eb"}
            for _ in range(n)
        ]
        for rse in on:
            add_replicas(self.session, rse, files, "jdoe")
        if not on:
            did_core.add_files(self.session, files, "jdoe")
        return [{"scope": f["scope"], "name": f["name"]} for f in files]

    def dataset(self, files: list[dict], name: str | None = None) -> dict:
        name = name or f"ds_{next(_counter)}"
        did_core.add_collection(self.session, "mock", name, "DATASET", "jdoe")
        if files:
            did_content.attach(self.session, "mock", name, files)
        return {"scope": "mock", "name": name}

    def container(self, children: list[dict]) -> dict:
        name = f"cnt_{next(_counter)}"
        did_core.add_collection(self.session, "mock", name, "CONTAINER", "jdoe")
        did_content.attach(self.session, "mock", name, children)
        return {"scope": "mock", "name": name}

    def locks(self, rule_id: str) -> dict[tuple[str, str], set[str]]:
        """(scope, name) -> RSE names locked by the rule."""
        names = {v: k for k, v in self.rse_ids.items()}
        out: dict[tuple[str, str], set[str]] = {}
        for lock in self.session.scalars(select(Lock).where(Lock.rule_id == rule_id)):
            out.setdefault((lock.scope, lock.name), set()).add(names[lock.rse_id])
        return out

    def replica(self, f: dict, rse: str) -> Replica | None:
        self.session.expire_all()
        return self.session.get(Replica, (f["scope"], f["name"], self.rse_ids[rse]))

    def rule(self, rule_id: str) -> Rule:
        self.session.expire_all()
        return self.session.get(Rule, rule_id)


def due(session: Session, queue: WorkQueue) -> list[str]:
    """The ids a daemon would claim now from ``queue``: the daemons' own filters, not a copy."""
    return [row[0] for row in queue.claim(session, "test-worker", limit=100, lease_seconds=60)]


def behind_a_lock(holder: Session, db: str, work: Callable[[Session], object]) -> Callable[[], object]:
    """Start ``work`` in a transaction of its own on another thread and return once it waits on
    a lock (one ``holder``'s open transaction holds); the caller then ends that transaction.
    Returns a function that waits for ``work`` and gives what it returned, or what it raised."""
    outcome: list[object] = []

    def run() -> None:
        try:
            with transaction(db) as own:
                outcome.append(work(own))
        except Exception as exc:  # the test reports what escaped
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    _wait_for_lock_wait(holder)

    def result() -> object:
        thread.join(timeout=30)
        assert len(outcome) == 1, "the blocked work did not end"
        return outcome[0]

    return result


def while_the_reaper_deletes(
    cat: Catalogue, db: str, f: dict, work: Callable[[Session], object]
) -> Callable[[], object]:
    """``work`` started while the reaper has confirmed the deletion of ``f``'s replica on R1
    (BEING_DELETED, not committed yet), waiting behind it; the confirmation then commits.
    Returns :func:`behind_a_lock`'s result function."""
    key = (f["scope"], f["name"])
    set_tombstone(cat.session, "R1", [key])
    cat.session.commit()
    with transaction(db) as reaper:
        assert deletion.claim_for_deletion(reaper, cat.rse_ids["R1"], "reaper", 0, 10, 60)
    with transaction(db) as reaper:
        assert deletion.confirm_deletion(reaper, "reaper", cat.rse_ids["R1"], [key], 60)
        return behind_a_lock(reaper, db, work)


def sent_to_fts(cat: Catalogue, session: Session, request_id: str) -> None:
    """Record the claimed request as being sent from R3 under FTS job ``job-1`` (SUBMITTING)."""
    sent = inflight.Submission(
        request_id=request_id,
        external_id="job-1",
        external_host="https://fts:8446",
        transfertool="fts3",
        source_rse_id=cat.rse_ids["R3"],
        dest_url="file:///r1/file",
        external_key="key-1",
    )
    assert inflight.mark_submitting(session, "submitter", [sent], 60) == {request_id}


def _wait_for_lock_wait(session: Session) -> None:
    """Until another backend waits on a lock (PostgreSQL only)."""
    deadline = time.monotonic() + 60  # generous: a loaded CI machine is slow to start the thread
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    with session.get_bind().connect() as probe:
        while not probe.execute(query).scalar():
            # Each look in a transaction of its own: PostgreSQL reads pg_stat_activity once per
            # transaction, and the probe's bind opens one (a unit's options), so a probe that
            # looked before the work's backend waited (a loaded machine starts the thread late)
            # saw that first answer on every later look.
            probe.rollback()
            assert time.monotonic() < deadline, "the blocked work never waited on a lock"
            time.sleep(0.05)


@pytest.fixture
def cat(session: Session, root: str) -> Catalogue:
    add_account(session, "jdoe", "USER")
    add_scope(session, "mock", "jdoe")
    catalogue = Catalogue(session)
    for rse, tag, weight in zip(RSES, ("T1", "T1", "T2", "T1"), (10, 0, 0, 0), strict=True):
        catalogue.rse_ids[rse] = add_rse(session, rse)
        add_rse_attribute(session, rse, tag, True)
        add_rse_attribute(session, rse, "fakeweight", weight)
        quota.set_local_account_limit(session, "jdoe", rse, -1)
    session.commit()
    return catalogue

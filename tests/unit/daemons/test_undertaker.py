"""undertaker: expired collections and lone expired files go with their rules; nothing protected is touched."""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from datamgmt.core import did, did_content, replica, rse, rule, scope
from datamgmt.core.db.constants import DIDReEvaluation
from datamgmt.core.db.models import Content, DataIdentifier, Message, Replica, Rule, UpdatedDID
from datamgmt.core.db.types import utcnow
from datamgmt.daemons.undertaker import Undertaker
from tests.integration.daemons.catalogue import one_request_per_replicating_lock, run_daemon
from tests.invariants import check_invariants

ON_POSTGRESQL = os.environ.get("DATAMGMT_TEST_DB_URL", "").startswith("postgresql")


def files(prefix: str, count: int) -> list[dict]:
    return [
        {"scope": "data", "name": f"{prefix}{i}", "bytes": 10, "adler32": "0000000a"} for i in range(count)
    ]


def expire(session, *names: str) -> None:
    session.execute(
        update(DataIdentifier)
        .where(DataIdentifier.name.in_(names))
        .values(expired_at=utcnow() - timedelta(minutes=1))
    )


def dataset(session, name: str, content: list[dict], monotonic: bool = False) -> None:
    did.add_collection(session, "data", name, "DATASET", "root", monotonic=monotonic)
    if content:
        did_content.attach(session, "data", name, [{"scope": f["scope"], "name": f["name"]} for f in content])


def names(session) -> set[str]:
    found = set(session.scalars(select(DataIdentifier.name)))
    session.rollback()
    return found


def erased(session) -> Counter[str]:
    rows = session.scalars(select(Message.payload).where(Message.event_type == "ERASE"))
    return Counter(json.loads(p)["name"] for p in rows)


@pytest.fixture
def catalogue(session, root):
    scope.add_scope(session, "data", "root")
    rse.add_rse(session, "SITE-A")
    session.commit()


def test_expired_collections_and_lone_files_are_buried(session, catalogue):
    old, live = files("old", 3), files("live", 2)
    replica.add_replicas(session, "SITE-A", old + live, "root")
    replica.add_replicas(session, "SITE-A", files("lonely", 1), "root")
    did.add_files(session, files("ghost", 1), "root")
    dataset(session, "ds-old", old)
    dataset(session, "ds-live", live)
    dataset(session, "ds-locked", [])
    dataset(session, "ds-kept", [])
    did.add_collection(session, "data", "ct", "CONTAINER", "root")
    did_content.attach(
        session, "data", "ct", [{"scope": "data", "name": "ds-old"}, {"scope": "data", "name": "ds-live"}]
    )
    did.add_collection(session, "data", "ct-mono", "CONTAINER", "root", monotonic=True)
    did_content.attach(session, "data", "ct-mono", [{"scope": "data", "name": "ds-kept"}])
    rule.add_rule(session, [{"scope": "data", "name": "ds-old"}], "root", 1, "SITE-A")
    rule.add_rule(session, [{"scope": "data", "name": "ds-live"}], "root", 1, "SITE-A")
    rule.add_rule(session, [{"scope": "data", "name": "ds-locked"}], "root", 1, "SITE-A", locked=True)
    expire(session, "ds-old", "ds-locked", "ds-kept", "lonely0", "ghost0", "live0")
    session.commit()

    undertaker = Undertaker("u")
    assert undertaker.run_once(100) == 3
    assert undertaker.run_once(100) == 0 and undertaker.idle

    assert names(session) == {
        "ds-live",
        "ds-locked",
        "ds-kept",
        "ct",
        "ct-mono",
        "lonely0",
        "live0",
        "live1",
        "old0",
        "old1",
        "old2",
    }
    assert erased(session) == Counter({"ds-old": 1, "lonely0": 1, "ghost0": 1})
    assert set(session.scalars(select(Rule.name))) == {"ds-live", "ds-locked"}
    old_replicas = session.execute(
        select(Replica.lock_cnt, Replica.tombstone).where(Replica.name.in_(["old0", "old1", "old2"]))
    ).all()
    assert len(old_replicas) == 3 and all(cnt == 0 and tomb is not None for cnt, tomb in old_replicas)
    live_replica = session.execute(
        select(Replica.lock_cnt, Replica.tombstone).where(Replica.name == "live0")
    ).one()
    assert live_replica == (1, None)  # attached and under a rule: untouched
    lonely = session.execute(select(Replica.tombstone).where(Replica.name == "lonely0")).scalar_one()
    assert lonely is not None
    assert session.scalar(select(DataIdentifier.expired_at).where(DataIdentifier.name == "lonely0")) is None
    container = session.execute(
        select(DataIdentifier.length, DataIdentifier.bytes).where(DataIdentifier.name == "ct")
    ).one()
    assert tuple(container) == (1, 20)
    assert set(session.scalars(select(Content.child_name).where(Content.name == "ct"))) == {"ds-live"}
    assert session.scalar(
        select(UpdatedDID.id).where(
            UpdatedDID.name == "ct", UpdatedDID.rule_evaluation_action == DIDReEvaluation.DETACH
        )
    )
    check_invariants(session)
    one_request_per_replicating_lock(session)


def test_failure_buries_nothing_of_the_batch(session, catalogue, monkeypatch):
    for name in ("ds-a", "ds-b"):
        dataset(session, name, [])
    expire(session, "ds-a", "ds-b")
    session.commit()

    def broken(session, event_type, payloads):
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr("datamgmt.core.undertaker.add_messages", broken)
    with pytest.raises(RuntimeError):
        Undertaker("u").run_once(100)
    assert {"ds-a", "ds-b"} <= names(session)


@pytest.mark.skipif(
    not ON_POSTGRESQL, reason="DATAMGMT_TEST_DB_URL is unset: concurrent instances need PostgreSQL"
)
def test_two_instances_bury_each_did_once(db, session, catalogue):
    content = files("f", 200)
    replica.add_replicas(session, "SITE-A", content, "root")
    for i in range(200):
        dataset(session, f"ds{i}", content[i : i + 1])
        rule.add_rule(session, [{"scope": "data", "name": f"ds{i}"}], "root", 1, "SITE-A")
    expire(session, *[f"ds{i}" for i in range(200)])
    session.commit()

    workers = [run_daemon(db, "undertaker", "--run-once", "--batch-size", "7") for _ in range(2)]
    for worker in workers:
        _, stderr = worker.communicate(timeout=120)
        assert worker.returncode == 0, stderr

    assert erased(session) == Counter({f"ds{i}": 1 for i in range(200)})
    assert not any(name.startswith("ds") for name in names(session))
    assert session.scalar(select(Rule.id)) is None
    check_invariants(session)
    one_request_per_replicating_lock(session)

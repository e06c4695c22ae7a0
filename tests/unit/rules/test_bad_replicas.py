"""Bad replicas, as Rucio treats them: declared, re-copied from a good replica or declared lost."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from datamgmt.core import bad_replica, deletion, necromancer
from datamgmt.core.db.constants import (
    BadFilesStatus,
    DIDAvailability,
    LockState,
    ReplicaState,
    RequestState,
    RuleState,
)
from datamgmt.core.db.models import (
    BadReplica,
    Content,
    DataIdentifier,
    Lock,
    Message,
    Replica,
    Request,
    Source,
)
from datamgmt.core.db.session import transaction
from datamgmt.core.db.types import utcnow
from datamgmt.core.replica_state import declare
from datamgmt.core.request import requests_done
from datamgmt.core.rule import add_rule
from datamgmt.exceptions import InputValidationError
from tests.invariants import check_invariants
from tests.unit.rules.conftest import Catalogue, while_the_reaper_deletes

BAD, SUSPICIOUS, TEMPORARY = (
    BadFilesStatus.BAD,
    BadFilesStatus.SUSPICIOUS,
    BadFilesStatus.TEMPORARY_UNAVAILABLE,
)


def _keys(files: list[dict]) -> list[tuple[str, str]]:
    return [(f["scope"], f["name"]) for f in files]


def _declarations(cat: Catalogue, f: dict, rse: str) -> list[BadFilesStatus]:
    cat.session.expire_all()
    return list(
        cat.session.scalars(
            select(BadReplica.state).where(
                BadReplica.scope == f["scope"],
                BadReplica.name == f["name"],
                BadReplica.rse_id == cat.rse_ids[rse],
            )
        )
    )


def _revive(cat: Catalogue) -> dict[str, int]:
    outcome = necromancer.revive(cat.session, necromancer.bad_replicas(cat.session, 100))
    cat.session.expire_all()
    return outcome


def test_a_bad_replica_with_a_good_copy_is_copied_again_and_recovered(cat: Catalogue) -> None:
    files = cat.files(2, on=("R1", "R2"))
    rule_id = add_rule(cat.session, [cat.dataset(files)], "jdoe", 1, "R1")[0]
    assert declare(cat.session, "R1", _keys(files[:1]), BAD, "checksum mismatch", "root") == []
    assert cat.rule(rule_id).state == RuleState.STUCK
    assert _revive(cat) == {"recovering": 1, "obsolete": 0, "lost": 0}
    assert cat.replica(files[0], "R1").state == ReplicaState.COPYING
    rule = cat.rule(rule_id)
    assert (rule.state, rule.locks_ok_cnt, rule.locks_replicating_cnt, rule.locks_stuck_cnt) == (
        RuleState.REPLICATING,
        1,
        1,
        0,
    )
    request = cat.session.scalars(select(Request)).one()
    assert (request.scope, request.name, request.dest_rse_id, request.state) == (
        files[0]["scope"],
        files[0]["name"],
        cat.rse_ids["R1"],
        RequestState.QUEUED,
    )
    assert set(cat.session.scalars(select(Source.rse_id).where(Source.request_id == request.id))) == {
        cat.rse_ids["R2"]
    }
    assert _revive(cat) == {"recovering": 0, "obsolete": 0, "lost": 0}, "a replica is revived once"
    check_invariants(cat.session)
    requests_done(cat.session, [request.id])
    assert cat.replica(files[0], "R1").state == ReplicaState.AVAILABLE
    assert cat.rule(rule_id).state == RuleState.OK
    assert _declarations(cat, files[0], "R1") == [BadFilesStatus.RECOVERED]
    check_invariants(cat.session)


def test_a_bad_last_copy_is_lost_its_locks_released_and_its_datasets_told(cat: Catalogue) -> None:
    files = cat.files(2)
    dataset = cat.dataset(files)
    rule_id = add_rule(cat.session, [dataset], "jdoe", 1, "R1")[0]
    declare(cat.session, "R1", _keys(files[:1]), BAD, "disk lost", "root")
    assert _revive(cat) == {"recovering": 0, "obsolete": 0, "lost": 1}
    rule = cat.rule(rule_id)
    assert (rule.state, rule.locks_ok_cnt, rule.locks_stuck_cnt) == (RuleState.OK, 1, 0)
    replica = cat.replica(files[0], "R1")
    assert (replica.state, replica.lock_cnt, replica.tombstone.year) == (ReplicaState.UNAVAILABLE, 0, 1970)
    did = cat.session.get(DataIdentifier, (files[0]["scope"], files[0]["name"]))
    assert did.availability == DIDAvailability.LOST
    assert _declarations(cat, files[0], "R1") == [BadFilesStatus.LOST]
    children = set(cat.session.scalars(select(Content.child_name).where(Content.name == dataset["name"])))
    assert children == {files[1]["name"]}
    assert cat.session.get(DataIdentifier, ("mock", dataset["name"])).length == 1
    lost = [
        json.loads(m.payload)
        for m in cat.session.scalars(select(Message).where(Message.event_type == "LOST"))
    ]
    assert lost == [
        {"scope": "mock", "name": files[0]["name"], "dataset_scope": "mock", "dataset_name": dataset["name"]}
    ]
    assert _revive(cat) == {"recovering": 0, "obsolete": 0, "lost": 0}
    check_invariants(cat.session)


def test_a_bad_replica_nobody_holds_goes_to_the_reaper(cat: Catalogue) -> None:
    files = cat.files(1, on=("R1", "R2"))
    declare(cat.session, "R1", _keys(files), BAD, None, "root")
    assert _revive(cat) == {"recovering": 0, "obsolete": 1, "lost": 0}
    replica = cat.replica(files[0], "R1")
    assert replica.state == ReplicaState.UNAVAILABLE and replica.tombstone.year == 1970
    assert not cat.session.scalars(select(Request)).all()


def test_declarations_report_what_they_did_not_declare(cat: Catalogue) -> None:
    files = cat.files(2)
    rule_id = add_rule(cat.session, [cat.dataset(files)], "jdoe", 1, "R1")[0]
    ghost = ("mock", "ghost")
    assert declare(cat.session, "R1", [*_keys(files[:1]), ghost], BAD, "x", "root") == [
        "mock:ghost Unknown replica"
    ]
    again = declare(cat.session, "R1", _keys(files), BAD, "x", "root")
    assert again == [f"mock:{files[0]['name']} Already declared"]
    assert cat.session.scalar(select(Lock.state).where(Lock.name == files[1]["name"])) == LockState.STUCK
    # force sets an already declared replica BAD again (the repairer had re-copied it), with no second row
    assert declare(cat.session, "R1", _keys(files[:1]), BAD, "x", "root", force=True) == []
    assert _declarations(cat, files[0], "R1") == [BAD]
    assert cat.rule(rule_id).locks_stuck_cnt == 2
    check_invariants(cat.session)


@pytest.mark.parametrize("state", [ReplicaState.COPYING, ReplicaState.BEING_DELETED])
def test_a_replica_in_flight_is_not_declared_bad(cat: Catalogue, state: ReplicaState) -> None:
    files = cat.files(1)
    cat.session.execute(update(Replica).values(state=state))
    assert declare(cat.session, "R1", _keys(files), BAD, "x", "root") == [
        f"mock:{files[0]['name']} Being copied or deleted"
    ]
    assert cat.replica(files[0], "R1").state == state and _declarations(cat, files[0], "R1") == []


def test_suspicious_reports_are_counted_until_someone_acts(cat: Catalogue) -> None:
    files = cat.files(2)
    for _ in range(3):
        declare(cat.session, "R1", _keys(files), SUSPICIOUS, "read error", "jdoe")
    assert cat.replica(files[0], "R1").state == ReplicaState.AVAILABLE
    found = bad_replica.suspicious(cat.session, None, None, 2)
    assert [(r["name"], r["rse"], r["cnt"]) for r in found] == sorted((f["name"], "R1", 3) for f in files)
    declare(cat.session, "R1", _keys(files[:1]), BAD, "confirmed", "root")
    assert [r["name"] for r in bad_replica.suspicious(cat.session, {cat.rse_ids["R1"]}, None, 0)] == [
        files[1]["name"]
    ]
    assert bad_replica.suspicious(cat.session, {cat.rse_ids["R2"]}, None, 0) == []
    states = list(bad_replica.list_states(cat.session, BAD, None, None, None, None))
    assert [(s["name"], s["rse"], s["state"]) for s in states] == [(files[0]["name"], "R1", "BAD")]
    (incident, *others) = [
        i for i in bad_replica.summary(cat.session, None, None, None) if i["reason"] == "read error"
    ]
    assert not others and incident["SUSPICIOUS"] == 6 and incident["rse"] == "R1"
    assert incident["created_at"].date() == utcnow().date()


def test_temporary_unavailability_expires(cat: Catalogue) -> None:
    files = cat.files(1)
    rule_id = add_rule(cat.session, files, "jdoe", 1, "R1")[0]
    with pytest.raises(InputValidationError):
        declare(cat.session, "R1", _keys(files), TEMPORARY, "downtime", "root")
    with pytest.raises(InputValidationError):
        declare(
            cat.session,
            "R1",
            _keys(files),
            TEMPORARY,
            "downtime",
            "root",
            expires_at=utcnow() + timedelta(days=31),
        )
    declare(
        cat.session,
        "R1",
        _keys(files),
        TEMPORARY,
        "downtime",
        "root",
        expires_at=utcnow() + timedelta(hours=1),
    )
    assert cat.replica(files[0], "R1").state == ReplicaState.TEMPORARY_UNAVAILABLE
    assert cat.rule(rule_id).state == RuleState.OK
    assert bad_replica.expire_unavailability(cat.session, 100) == 0
    cat.session.execute(update(BadReplica).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert bad_replica.expire_unavailability(cat.session, 100) == 1
    assert cat.replica(files[0], "R1").state == ReplicaState.AVAILABLE
    assert _declarations(cat, files[0], "R1") == [BadFilesStatus.DELETED]
    check_invariants(cat.session)


def test_a_replica_declared_bad_while_the_reaper_confirms_its_deletion_is_not_declared(
    cat: Catalogue, session: Session, db: str
) -> None:
    """The declaration read it AVAILABLE before the reaper's confirmation committed, then wrote
    BAD over BEING_DELETED, so the reaper kept the row of the file it deleted (PostgreSQL: SQLite
    runs one writer at a time)."""
    if not db.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time: the interleaving cannot arise")
    f = cat.files(1, on=("R1",))[0]
    key = (f["scope"], f["name"])
    declaration = while_the_reaper_deletes(cat, db, f, lambda s: declare(s, "R1", [key], BAD, "x", "root"))
    assert declaration() == [f"mock:{f['name']} Being copied or deleted"]
    assert cat.replica(f, "R1").state == ReplicaState.BEING_DELETED and _declarations(cat, f, "R1") == []
    with transaction(db) as reaper:
        assert deletion.forget_replicas(reaper, "reaper", cat.rse_ids["R1"], [key]) == 1

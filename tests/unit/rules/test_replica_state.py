"""Replica states set by clients drive the locks on them (Rucio's successful/failed_transfer)."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from datamgmt.core import deletion
from datamgmt.core.db.constants import BadFilesStatus, ReplicaState, RuleState
from datamgmt.core.db.models import Replica
from datamgmt.core.db.session import transaction
from datamgmt.core.replica import add_replicas
from datamgmt.core.replica_state import declare, set_replica_states
from datamgmt.core.rule import add_rule
from datamgmt.exceptions import UnsupportedOperation
from tests.invariants import check_invariants
from tests.unit.rules.conftest import Catalogue, while_the_reaper_deletes


def _uploaded(cat: Catalogue, name: str) -> dict:
    """A file registered COPYING on R1, as ``rucio upload`` does before it copies the bytes."""
    item = {"scope": "mock", "name": name, "bytes": 10, "adler32": "0cc737eb", "state": "C"}
    add_replicas(cat.session, "R1", [item], "jdoe")
    return {"scope": "mock", "name": name}


def _states(cat: Catalogue, rule_id: str) -> tuple[RuleState, int, int, int]:
    rule = cat.rule(rule_id)
    return rule.state, rule.locks_ok_cnt, rule.locks_replicating_cnt, rule.locks_stuck_cnt


def test_upload_flow_turns_the_rule_ok(cat: Catalogue) -> None:
    f = _uploaded(cat, "up1")
    rule_id = add_rule(cat.session, [f], "jdoe", 1, "R1")[0]
    assert _states(cat, rule_id) == (RuleState.REPLICATING, 0, 1, 0)
    set_replica_states(cat.session, "R1", [{**f, "state": "A"}])
    cat.session.expire_all()
    assert _states(cat, rule_id) == (RuleState.OK, 1, 0, 0)
    assert cat.replica(f, "R1").state == ReplicaState.AVAILABLE
    check_invariants(cat.session)


@pytest.mark.parametrize("state", ["U", "D"])  # UNAVAILABLE, BAD
def test_losing_a_replica_makes_its_locks_stuck_for_the_repairer(cat: Catalogue, state: str) -> None:
    files = cat.files(2)
    rule_id = add_rule(cat.session, [cat.dataset(files)], "jdoe", 1, "R1")[0]
    set_replica_states(cat.session, "R1", [{**files[0], "state": state}])
    cat.session.expire_all()
    assert _states(cat, rule_id) == (RuleState.STUCK, 1, 0, 1)
    assert "R1" in cat.rule(rule_id).error
    set_replica_states(cat.session, "R1", [{**files[0], "state": "A"}])
    cat.session.expire_all()
    assert _states(cat, rule_id) == (RuleState.OK, 2, 0, 0) and cat.rule(rule_id).error is None
    check_invariants(cat.session)


def test_declared_bad_replica_sticks_its_locks_with_the_reason(cat: Catalogue) -> None:
    files = cat.files(1)
    rule_id = add_rule(cat.session, files, "jdoe", 1, "R1")[0]
    declare(
        cat.session,
        "R1",
        [(f["scope"], f["name"]) for f in files],
        BadFilesStatus.BAD,
        "checksum mismatch",
        "root",
    )
    cat.session.expire_all()
    assert _states(cat, rule_id) == (RuleState.STUCK, 0, 0, 1)
    assert "checksum mismatch" in cat.rule(rule_id).error
    check_invariants(cat.session)


def test_only_the_changed_rse_moves(cat: Catalogue) -> None:
    files = cat.files(1, on=("R1", "R2"))
    on_r2 = add_rule(cat.session, files, "jdoe", 1, "R2")[0]
    set_replica_states(cat.session, "R1", [{**files[0], "state": "U"}])
    cat.session.expire_all()
    assert _states(cat, on_r2) == (RuleState.OK, 1, 0, 0)
    assert cat.locks(on_r2) == {(files[0]["scope"], files[0]["name"]): {"R2"}}


@pytest.mark.parametrize("state", ["A", "T", "C", "U"])
def test_a_replica_the_reaper_is_deleting_keeps_that_state(cat: Catalogue, state: str) -> None:
    """Its file is going from storage: no state a client sets may hide that from the reaper."""
    files = cat.files(2)
    cat.session.execute(
        update(Replica).where(Replica.name == files[1]["name"]).values(state=ReplicaState.BEING_DELETED)
    )
    with pytest.raises(UnsupportedOperation, match=f"{files[1]['name']}' is being deleted"):
        set_replica_states(cat.session, "R1", [{**f, "state": state} for f in files])
    cat.session.rollback()


def test_a_replica_set_available_while_the_reaper_confirms_its_deletion_is_refused(
    cat: Catalogue, session: Session, db: str
) -> None:
    """The client read it AVAILABLE before the reaper's confirmation committed; its update waited
    for that commit and wrote AVAILABLE over BEING_DELETED, so the reaper kept the row of the
    file it deleted (PostgreSQL: SQLite runs one writer at a time)."""
    if not db.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time: the interleaving cannot arise")
    f = cat.files(1, on=("R1",))[0]
    key = (f["scope"], f["name"])
    client = while_the_reaper_deletes(
        cat, db, f, lambda s: set_replica_states(s, "R1", [{**f, "state": "AVAILABLE"}])
    )
    assert isinstance(client(), UnsupportedOperation)
    assert cat.replica(f, "R1").state == ReplicaState.BEING_DELETED
    with transaction(db) as reaper:  # the file is deleted from storage; the row goes with it
        assert deletion.forget_replicas(reaper, "reaper", cat.rse_ids["R1"], [key]) == 1
    assert cat.replica(f, "R1") is None

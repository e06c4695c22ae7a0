"""Replica states set by clients drive the locks on them (Rucio's successful/failed_transfer)."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from datamgmt.core.db.constants import BadFilesStatus, ReplicaState, RuleState
from datamgmt.core.db.models import Replica
from datamgmt.core.replica import add_replicas
from datamgmt.core.replica_state import declare, set_replica_states
from datamgmt.core.rule import add_rule
from datamgmt.exceptions import UnsupportedOperation
from tests.invariants import check_invariants
from tests.unit.rules.conftest import Catalogue


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


def test_a_replica_the_reaper_is_deleting_cannot_be_declared_available(cat: Catalogue) -> None:
    files = cat.files(1)
    cat.session.execute(update(Replica).values(state=ReplicaState.BEING_DELETED))
    with pytest.raises(UnsupportedOperation):
        set_replica_states(cat.session, "R1", [{**files[0], "state": "A"}])
    cat.session.rollback()

"""Rule policies that involve tape (issue 23): ``rse_type`` in expressions keeps tape out of disk
copies, staging areas need a lifetime, and ``split_container`` becomes one rule per dataset."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from datamgmt.core import rule as rules
from datamgmt.core import rule_update
from datamgmt.core.db.constants import RuleState
from datamgmt.core.db.models import RSE, Lock, Rule
from datamgmt.core.quota import set_local_account_limit
from datamgmt.core.rse import add_rse, add_rse_attribute
from datamgmt.exceptions import StagingAreaRuleRequiresLifetime
from tests.invariants import check_invariants


@pytest.fixture
def tapes(cat, session):
    """Tier-1 tapes T1TAPE and T1TAPE2 besides the tier-1 disks R1, R2, R4."""
    for name in ("T1TAPE", "T1TAPE2"):
        add_rse(session, name, rse_type="TAPE")
        add_rse_attribute(session, name, "T1", "true")
        set_local_account_limit(session, "jdoe", name, -1)
    session.commit()


def locked_on(session, rule_id: str) -> dict[str, set[str]]:
    """File name → RSE names the rule locks it on."""
    found: dict[str, set[str]] = {}
    for name, rse in session.execute(
        select(Lock.name, RSE.rse).join(RSE, RSE.id == Lock.rse_id).where(Lock.rule_id == rule_id)
    ):
        found.setdefault(name, set()).add(rse)
    return found


def test_two_disk_copies_and_one_tape_copy_land_where_they_belong(cat, session, tapes):
    files = cat.files(4, on=())
    ds = cat.dataset(files)
    (disk,) = rules.add_rule(session, [ds], "jdoe", 2, "T1&rse_type=DISK", grouping="NONE")
    (tape,) = rules.add_rule(session, [ds], "jdoe", 1, "T1&rse_type=TAPE", grouping="NONE")
    on_disk, on_tape = locked_on(session, disk), locked_on(session, tape)
    assert len(on_disk) == len(on_tape) == 4
    assert all(len(rses) == 2 and rses <= {"R1", "R2", "R4"} for rses in on_disk.values())  # never a tape
    assert all(len(rses) == 1 and rses <= {"T1TAPE", "T1TAPE2"} for rses in on_tape.values())
    assert cat.rule(tape).locked and not cat.rule(disk).locked
    check_invariants(session)


def test_a_staging_area_rule_needs_a_lifetime(cat, session):
    from datamgmt.core.rse import update_rse

    add_rse(session, "BUFFER")
    update_rse(session, "BUFFER", {"staging_area": True})
    set_local_account_limit(session, "jdoe", "BUFFER", -1)
    session.commit()
    f = cat.files(1)[0]
    with pytest.raises(StagingAreaRuleRequiresLifetime):
        rules.add_rule(session, [f], "jdoe", 1, "BUFFER")
    (rid,) = rules.add_rule(session, [f], "jdoe", 1, "BUFFER", lifetime=3600)
    assert locked_on(session, rid) == {f["name"]: {"BUFFER"}}


def test_split_container_becomes_one_rule_per_dataset(cat, session):
    first, second = cat.dataset(cat.files(2, on=("R3",))), cat.dataset(cat.files(3, on=("R3",)))
    outer = cat.container([cat.container([first]), cat.container([second])])  # datasets at any depth
    (existing,) = rules.add_rule(session, [first], "jdoe", 1, "R1")  # already has a rule: not split onto
    (rid,) = rules.add_rule(
        session, [outer], "jdoe", 1, "R1", split_container=True, lifetime=3600, priority=4
    )
    assert cat.rule(rid).state == RuleState.INJECT and cat.rule(rid).split_container
    assert rules.apply_injected_rule(session, rid) == RuleState.OK
    session.expire_all()
    assert session.get(Rule, rid) is None  # replaced by the dataset rules
    made = session.scalars(select(Rule).where(Rule.id != existing)).all()
    assert [(r.name, r.state, r.grouping.name, r.priority) for r in made] == [
        (second["name"], RuleState.INJECT, "DATASET", 4)
    ]
    assert made[0].expires_at is not None
    assert rules.apply_injected_rule(session, made[0].id) == RuleState.REPLICATING
    assert len(cat.locks(made[0].id)) == 3
    check_invariants(session)


def test_split_container_on_a_dataset_is_an_ordinary_rule(cat, session):
    ds = cat.dataset(cat.files(2, on=("R3",)))
    (rid,) = rules.add_rule(session, [ds], "jdoe", 1, "R1", split_container=True)
    assert cat.rule(rid).state == RuleState.REPLICATING and len(cat.locks(rid)) == 2


def test_an_expired_staging_rule_releases_its_pins_and_never_its_tape_copies(cat, session, tapes):
    """A STAGEIN rule (``staging_required``) that expires: the judge-cleaner's removal queues the
    release of each pin once no other lock holds the file, drops the STAGEIN requests, and, even
    with ``purge_replicas``, leaves the tape replicas alone (no OBSOLETE tombstone)."""
    from datetime import timedelta

    from datamgmt.core.db.constants import OBSOLETE, ReplicaState, RequestState, RequestType
    from datamgmt.core.db.models import PinRelease, Replica, Request
    from datamgmt.core.db.types import utcnow

    add_rse_attribute(session, "T1TAPE", "staging_required", True)
    files = cat.files(2, on=("T1TAPE",))
    (pinning,) = rules.add_rule(
        session, [cat.dataset(files)], "jdoe", 1, "T1TAPE", lifetime=3600, purge_replicas=True
    )
    (other,) = rules.add_rule(session, [files[0]], "jdoe", 1, "T1TAPE", lifetime=7200)  # still wants file 0
    requests = session.scalars(select(Request).where(Request.rule_id == pinning)).all()
    assert {r.request_type for r in requests} == {RequestType.STAGEIN}
    for request in requests:  # staged by the tool
        request.state, request.dest_url, request.external_id = (
            RequestState.DONE,
            f"file:///t/{request.name}",
            "job",
        )
    session.get(Rule, pinning).expires_at = utcnow() - timedelta(seconds=1)
    session.flush()
    assert rule_update.delete_expired_rule(session, pinning)
    released = session.execute(select(PinRelease.url, PinRelease.external_id)).all()
    assert released == [(f"file:///t/{files[1]['name']}", "job")]  # file 0 stays pinned for the other rule
    replicas = session.execute(select(Replica.name, Replica.state, Replica.tombstone)).all()
    assert all(state is ReplicaState.AVAILABLE for _, state, _ in replicas)
    assert all(
        tombstone != OBSOLETE for _, _, tombstone in replicas
    )  # purge_replicas never reaches tape here
    left = session.scalars(select(Request.name).where(Request.rule_id == pinning)).all()
    assert left == [files[0]["name"]]  # file 0 is still locked (by the other rule): nothing released
    assert cat.rule(other) is not None
    check_invariants(session)

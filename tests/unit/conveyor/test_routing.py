"""Routing a batch: source ranking, expressions, protocol matching, URLs and the throttler."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from datamgmt.core import inflight, rse, rse_distance, transfer_limit
from datamgmt.core import transfer as core
from datamgmt.core.db.constants import RequestState
from datamgmt.core.db.models import Request, Rule, Source
from datamgmt.exceptions import RSEProtocolNotSupported
from datamgmt.rse.lfn2pfn import hash_path
from datamgmt.rse.protocols import ProtocolRecord
from tests.unit.conveyor.catalogue import (
    SCOPE,
    add_posix_replica,
    add_posix_rse,
    add_request,
    ensure_scope,
    random_file,
    tpc_domains,
)


@pytest.fixture
def sites(session, root, tmp_path):
    """Four source RSEs (NEAR, FAR, TAPE, DOWN unreadable) and a destination DEST."""
    ids = {name: add_posix_rse(session, name, tmp_path / name) for name in ("NEAR", "FAR", "DOWN", "DEST")}
    ids["TAPE"] = add_posix_rse(session, "TAPE", tmp_path / "TAPE", rse_type="TAPE")
    rse.update_rse(session, "DOWN", {"availability_read": False})
    rse_distance.set_distance(session, "NEAR", "DEST", 1)
    rse_distance.set_distance(session, "TAPE", "DEST", 1)
    rse_distance.set_distance(session, "FAR", "DEST", 5)
    ensure_scope(session)
    return ids


def claim_all(session):
    requests = core.claim_queued(session, "w", 100, 60)
    session.flush()
    return requests


def test_sources_ranked_disk_before_tape_then_by_distance_then_failures(session, sites, tmp_path):
    spec = random_file("f1")
    for name in ("FAR", "TAPE", "DOWN", "NEAR"):
        add_posix_replica(session, name, tmp_path / name, spec)
    add_request(session, spec, sites["DEST"])
    [request] = claim_all(session)
    ranked = core.source_candidates(session, [request])[request.id]
    # TAPE is as near as NEAR, yet it comes after the far disk; DOWN is unreadable.
    assert [c.rse_id for c in ranked] == [sites["NEAR"], sites["FAR"], sites["TAPE"]]
    session.add(
        Source(
            request_id=request.id,
            rse_id=sites["NEAR"],
            scope=SCOPE,
            name="f1",
            dest_rse_id=sites["DEST"],
            ranking=-1,
        )
    )
    rse_distance.set_distance(session, "FAR", "DEST", 1)
    session.flush()
    ranked = core.source_candidates(session, [request])[request.id]
    assert [c.rse_id for c in ranked] == [sites["FAR"], sites["NEAR"], sites["TAPE"]]


def test_a_source_without_a_distance_row_comes_after_a_far_known_one(session, sites, tmp_path):
    unlinked = add_posix_rse(session, "UNLINKED", tmp_path / "UNLINKED")
    rse_distance.set_distance(session, "FAR", "DEST", 5000)
    spec = random_file("f1")
    for name in ("UNLINKED", "FAR"):
        add_posix_replica(session, name, tmp_path / name, spec)
    add_request(session, spec, sites["DEST"])
    [request] = claim_all(session)
    ranked = core.source_candidates(session, [request])[request.id]
    assert [(c.rse_id, c.distance) for c in ranked] == [
        (sites["FAR"], 5000),
        (unlinked, rse_distance.UNKNOWN_DISTANCE),
    ]


def test_source_replica_expression_restricts_sources(session, sites, tmp_path):
    spec = random_file("f2")
    for name in ("NEAR", "FAR"):
        add_posix_replica(session, name, tmp_path / name, spec)
    rule = Rule(
        account="root",
        scope=SCOPE,
        name="f2",
        did_type="F",
        rse_expression="DEST",
        source_replica_expression="FAR",
    )
    session.add(rule)
    session.flush()
    add_request(session, spec, sites["DEST"], rule_id=rule.id)
    [request] = claim_all(session)
    assert request.source_replica_expression == "FAR"
    assert [c.rse_id for c in core.source_candidates(session, [request])[request.id]] == [sites["FAR"]]


def test_plan_builds_hash_path_urls_and_marks_unroutable(session, sites, tmp_path):
    present, absent = random_file("f3"), random_file("f4")
    add_posix_replica(session, "NEAR", tmp_path / "NEAR", present)
    ok = add_request(session, present, sites["DEST"])
    none = add_request(session, absent, sites["DEST"])
    plan = core.plan_transfers(session, claim_all(session))
    [planned] = plan.transfers
    assert planned.request.id == ok and planned.source_rse_id == sites["NEAR"]
    assert planned.spec.sources == [f"file://{tmp_path / 'NEAR' / hash_path(SCOPE, 'f3')}"]
    assert planned.spec.destination == f"file://{tmp_path / 'DEST' / hash_path(SCOPE, 'f3')}"
    assert planned.spec.adler32 == present.adler32 and planned.spec.verify_checksum == "both"
    assert plan.unroutable == {none: (RequestState.NO_SOURCES, "no AVAILABLE replica on a readable RSE")}
    inflight.mark_unroutable(session, "w", plan.unroutable)
    assert session.scalar(select(Request.state).where(Request.id == none)) is RequestState.NO_SOURCES


def test_submitting_then_submitted_is_bulk_and_only_for_the_claimer(session, sites, tmp_path):
    specs = [random_file(f"s{i}") for i in range(3)]
    for spec in specs:
        add_posix_replica(session, "NEAR", tmp_path / "NEAR", spec)
        add_request(session, spec, sites["DEST"])
    plan = core.plan_transfers(session, claim_all(session))
    submissions = [
        inflight.Submission(
            p.request.id, f"job-{i}", "http://fts", "fts3", p.source_rse_id, p.spec.destination
        )
        for i, p in enumerate(plan.transfers)
    ]
    assert inflight.mark_submitting(session, "someone-else", submissions, 60) == set()
    assert inflight.mark_submitting(session, "w", submissions, 60) == {s.request_id for s in submissions}
    rows = session.execute(select(Request.state, Request.external_id, Request.claimed_by)).all()
    assert sorted(rows) == [(RequestState.SUBMITTING, f"job-{i}", "w") for i in range(3)]
    used = session.execute(select(Source.rse_id, Source.is_using)).all()
    assert used == [(sites["NEAR"], True)] * 3  # recorded before anything is sent: the reaper keeps it
    confirmed = {s.request_id: s.external_id for s in submissions}
    assert inflight.mark_submitted(session, "someone-else", confirmed) == 0
    assert inflight.mark_submitted(session, "w", confirmed) == 3
    rows = session.execute(select(Request.state, Request.external_id, Request.claimed_by)).all()
    assert sorted(rows) == [(RequestState.SUBMITTED, f"job-{i}", None) for i in range(3)]


def test_throttler_limits_per_rse_and_activity(session, sites, tmp_path):
    specs = [random_file(f"t{i}") for i in range(4)]
    for spec in specs:
        add_posix_replica(session, "NEAR", tmp_path / "NEAR", spec)
    ids = [
        add_request(session, spec, sites["DEST"], activity="A" if i < 2 else "B")
        for i, spec in enumerate(specs)
    ]
    session.execute(update(Request).where(Request.id == ids[0]).values(state=RequestState.SUBMITTED))
    requests = claim_all(session)
    allowed, held = core.throttle(session, requests, max_active_per_rse=3)
    assert len(allowed) == 2 and len(held) == 1
    allowed, held = core.throttle(session, requests, max_active_per_rse=0, activity_limits={"A": 1})
    assert [r.id for r in held] == [ids[1]] and {r.id for r in allowed} == set(ids[2:])


def test_claim_respects_not_before_and_priority(session, sites, tmp_path):
    from datetime import timedelta

    from datamgmt.core.db.types import utcnow

    specs = [random_file(f"p{i}") for i in range(3)]
    low = add_request(session, specs[0], sites["DEST"], priority=1)
    high = add_request(session, specs[1], sites["DEST"], priority=5)
    add_request(session, specs[2], sites["DEST"], not_before=utcnow() + timedelta(hours=1))
    assert [r.id for r in core.claim_queued(session, "w", 10, 60)] == [high, low]


def record(scheme, read=1, write=1, host="h"):
    return ProtocolRecord(scheme=scheme, hostname=host, domains=tpc_domains(read, write))


def test_match_prefers_same_scheme_then_destination_priority():
    source = [record("root", read=1), record("davs", read=2)]
    assert [p.scheme for p in core.match_protocols(source, [record("davs", write=1)])] == ["davs", "davs"]
    assert [p.scheme for p in core.match_protocols(source, [record("https", write=1)])] == ["davs", "https"]
    destination = [record("s3", write=1), record("root", write=2)]
    assert [p.scheme for p in core.match_protocols(source, destination)] == ["root", "root"]
    assert [p.scheme for p in core.match_protocols(source, [record("s3", write=1)])] == ["root", "s3"]
    with pytest.raises(RSEProtocolNotSupported):
        core.match_protocols(source, [record("davs", write=0)])


def test_tape_source_is_staged_and_only_used_when_no_disk_copy_can_serve(
    session, sites, tmp_path, monkeypatch
):
    monkeypatch.setenv("DATAMGMT_CONVEYOR_BRING_ONLINE", "3600")
    from datamgmt.config import reset_config

    reset_config()
    add_posix_rse(session, "NOTPC", tmp_path / "NOTPC", domains=tpc_domains(read=0))  # disk, cannot serve
    rse_distance.set_distance(session, "NOTPC", "DEST", 1)
    spec = random_file("staged")
    for name in ("NOTPC", "TAPE"):
        add_posix_replica(session, name, tmp_path / name, spec)
    add_request(session, spec, sites["DEST"])
    [planned] = core.plan_transfers(session, claim_all(session)).transfers
    reset_config()
    assert planned.source_rse_id == sites["TAPE"]
    assert (planned.spec.bring_online, planned.spec.copy_pin_lifetime) == (3600, 172800)
    assert planned.spec.archive_timeout is None and planned.spec.overwrite  # the destination is disk


def test_tape_destination_asks_for_archive_monitoring_and_no_overwrite(session, sites, tmp_path):
    vault = add_posix_rse(session, "VAULT", tmp_path / "VAULT", rse_type="TAPE")
    rse.add_rse_attribute(session, "VAULT", "archive_timeout", "7200")
    spec, other = random_file("archived"), random_file("default")
    add_posix_replica(session, "NEAR", tmp_path / "NEAR", spec)
    add_posix_replica(session, "NEAR", tmp_path / "NEAR", other)
    add_request(session, spec, vault)
    add_request(session, other, sites["TAPE"])
    planned = {p.request.name: p.spec for p in core.plan_transfers(session, claim_all(session)).transfers}
    assert planned["archived"].archive_timeout == 7200  # the RSE's attribute
    assert planned["default"].archive_timeout == 86400  # [conveyor] archive_timeout
    assert not planned["archived"].overwrite and planned["archived"].bring_online is None


def _sources_of(plan) -> dict[str, str]:
    return {p.request.name: p.source_rse_id for p in plan.transfers}


def _unclaim(session) -> None:
    """Give the planned batch back, as the submitter does with what it did not submit."""
    session.execute(update(Request).values(claimed_by=None, claimed_until=None))


def test_source_limits_pass_over_a_full_source_and_hold_what_only_it_could_serve(session, sites, tmp_path):
    """SOURCE transfer limits: NEAR may feed one active transfer and already does, so the batch
    reads from FAR; once FAR is capped too, what does not fit waits (throttled, not failed)."""
    busy, *specs = [random_file(f"src{i}") for i in range(4)]
    for spec in (busy, *specs):
        for name in ("NEAR", "FAR"):
            add_posix_replica(session, name, tmp_path / name, spec)
    active = add_request(session, busy, sites["DEST"])
    session.execute(
        update(Request)
        .where(Request.id == active)
        .values(state=RequestState.SUBMITTED, source_rse_id=sites["NEAR"])
    )
    ids = {spec.name: add_request(session, spec, sites["DEST"]) for spec in specs}
    transfer_limit.set_transfer_limit(session, "NEAR", direction="SOURCE", max_transfers=1)

    plan = core.plan_transfers(session, claim_all(session))
    assert _sources_of(plan) == {spec.name: sites["FAR"] for spec in specs}
    assert plan.throttled == [] and plan.unroutable == {}
    _unclaim(session)

    transfer_limit.set_transfer_limit(session, "FAR", direction="SOURCE", max_transfers=2)
    plan = core.plan_transfers(session, claim_all(session))
    assert sorted(_sources_of(plan).values()) == [sites["FAR"]] * 2
    [waiting] = plan.throttled
    assert waiting in ids.values() and plan.unroutable == {}
    _unclaim(session)

    # A DESTINATION limit of the same expression does not cap NEAR as a source.
    transfer_limit.delete_transfer_limit(session, "NEAR", direction="SOURCE")
    transfer_limit.set_transfer_limit(session, "NEAR", direction="DESTINATION", max_transfers=1)
    plan = core.plan_transfers(session, claim_all(session))
    assert set(_sources_of(plan).values()) == {sites["NEAR"]} and len(plan.transfers) == 3


def test_source_limits_per_activity(session, sites, tmp_path):
    """A SOURCE limit naming an activity caps only that activity's transfers from the RSE."""
    specs = [random_file(f"act{i}") for i in range(4)]
    for spec in specs:
        add_posix_replica(session, "NEAR", tmp_path / "NEAR", spec)
    for i, spec in enumerate(specs):
        add_request(session, spec, sites["DEST"], activity="Express" if i < 2 else "Bulk")
    transfer_limit.set_transfer_limit(
        session, "NEAR", activity="Express", direction="SOURCE", max_transfers=1
    )
    plan = core.plan_transfers(session, claim_all(session))
    assert sorted(p.request.activity for p in plan.transfers) == ["Bulk", "Bulk", "Express"]
    assert len(plan.throttled) == 1 and plan.unroutable == {}

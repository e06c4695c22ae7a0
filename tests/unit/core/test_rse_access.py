"""An RSE's row, attributes and protocols from the generation's snapshot
(``core/rse_access.py``): the same as read from the catalogue, built once per generation, and
never older than the session asking."""

from __future__ import annotations

from datamgmt.core import rse
from datamgmt.core.db.session import transaction
from datamgmt.core.rse_access import rse_detail

PROTOCOL = {"scheme": "root", "hostname": "xrd.example.org", "port": 1094, "prefix": "/data/"}


def _site(db: str) -> None:
    with transaction(db) as session:
        rse.add_rse(session, "SITE", rse_type="TAPE", volatile=True)
        rse.add_rse(session, "OTHER")
        for key, value in (("tier", 1), ("verify_checksum", False), ("lfn2pfn_algorithm", "identity")):
            rse.add_rse_attribute(session, "SITE", key, value)
        rse.add_rse_attribute(session, "OTHER", "tier", 2)
        rse.add_protocol(session, "SITE", PROTOCOL)


def test_the_snapshot_answers_as_the_catalogue_does(db: str) -> None:
    _site(db)
    with transaction(db, read_only=True) as session:
        held = rse_detail(session, "SITE")
        read = rse.get_rse_detail(session, "SITE")
        by_id = rse_detail(session, "SITE", held.info.id)
    assert held == read
    assert held.attributes == {
        "SITE": True,
        "tier": "1",
        "verify_checksum": False,
        "lfn2pfn_algorithm": "identity",
    }
    assert (held.info.rse_type, held.info.volatile, [p["scheme"] for p in held.protocols]) == (
        "TAPE",
        True,
        ["root"],
    )
    assert by_id is held, "built once per generation"


def test_a_committed_change_is_seen_at_once_and_an_uncommitted_one_by_its_session(db: str) -> None:
    _site(db)
    with transaction(db, read_only=True) as session:
        before = rse_detail(session, "SITE")
    with transaction(db) as session:
        rse.add_rse_attribute(session, "SITE", "tier", 0)
        assert rse_detail(session, "SITE").attributes["tier"] == "0", "its own change, not committed yet"
    with transaction(db, read_only=True) as session:
        after = rse_detail(session, "SITE")
    assert (before.attributes["tier"], after.attributes["tier"]) == ("1", "0")
    with transaction(db) as session:
        rse.del_protocol(session, "SITE", "root")
    with transaction(db, read_only=True) as session:
        assert rse_detail(session, "SITE").protocols == []

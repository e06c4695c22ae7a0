"""RSEs, DIDs, contents and replicas: behaviour, bad input, and no half-writes."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from datamgmt.core import did, did_content, metadata_filter, replica, replica_state, rse, rse_distance, scope
from datamgmt.core.db.constants import BadFilesStatus
from datamgmt.core.db.models import Content, DataIdentifier, Replica, UpdatedDID
from datamgmt.exceptions import (
    DataIdentifierAlreadyExists,
    DataIdentifierNotFound,
    Duplicate,
    DuplicateContent,
    FileConsistencyMismatch,
    InputValidationError,
    RSENotFound,
    ScopeNotFound,
    UnsupportedOperation,
)


def files(n: int, prefix: str = "f", size: int = 10) -> list[dict]:
    return [{"scope": "data", "name": f"{prefix}{i}", "bytes": size, "adler32": "0000000a"} for i in range(n)]


@pytest.fixture
def catalogue(session, root):
    scope.add_scope(session, "data", "root")
    rse.add_rse(session, "SITE-A")
    rse.add_rse(session, "SITE-B", rse_type="TAPE")
    session.commit()
    return session


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_rse_carries_its_name_attribute(catalogue):
    assert rse.list_rse_attributes(catalogue, "SITE-A") == {"SITE-A": True}
    rse.add_rse_attribute(catalogue, "SITE-A", "tier", 1)
    rse.add_rse_attribute(catalogue, "SITE-A", "T1", True)
    assert rse.list_rse_attributes(catalogue, "SITE-A") == {"SITE-A": True, "tier": "1", "T1": True}


def test_rse_errors(catalogue):
    with pytest.raises(Duplicate):
        rse.add_rse(catalogue, "SITE-A")
    with pytest.raises(InputValidationError):
        rse.add_rse(catalogue, "lower-case")
    with pytest.raises(RSENotFound):
        rse.get_rse(catalogue, "NOWHERE")


def test_rse_availability_bitmask_and_flags(catalogue):
    rse.update_rse(catalogue, "SITE-A", {"availability": 5})
    info = rse.get_rse(catalogue, "SITE-A")
    assert (info.availability_read, info.availability_write, info.availability_delete) == (True, False, True)
    assert info.availability == 5
    rse.update_rse(catalogue, "SITE-A", {"availability_write": "true"})
    assert rse.get_rse(catalogue, "SITE-A").availability == 7
    with pytest.raises(InputValidationError):
        rse.update_rse(catalogue, "SITE-A", {"rse": "RENAMED"})


def test_protocols_limits_usage_distances(catalogue):
    rse.add_protocol(
        catalogue,
        "SITE-A",
        {
            "scheme": "root",
            "hostname": "127.0.0.1",
            "port": 1094,
            "prefix": "/data",
            "impl": "gfal2",
            "domains": {"wan": {"read": 1, "write": 2, "third_party_copy_read": 1}},
        },
    )
    [proto] = rse.list_protocols(catalogue, "SITE-A")
    assert proto["domains"]["wan"]["write"] == 2 and proto["domains"]["lan"]["read"] == 0
    with pytest.raises(Duplicate):
        rse.add_protocol(catalogue, "SITE-A", {"scheme": "root", "hostname": "127.0.0.1", "port": 1094})
    with pytest.raises(InputValidationError):
        rse.add_protocol(
            catalogue, "SITE-A", {"scheme": "davs", "domains": {"lan": {"third_party_copy_read": 1}}}
        )
    rse.set_rse_limits(catalogue, "SITE-A", "MinFreeSpace", 1000)
    assert rse.get_rse_limits(catalogue, "SITE-A") == {"MinFreeSpace": 1000}
    rse.set_rse_usage(catalogue, "SITE-A", "storage", used=10, free=90)
    assert rse.get_rse_usage(catalogue, "SITE-A")[0]["total"] == 100
    rse_distance.set_distance(catalogue, "SITE-A", "SITE-B", 3)
    assert rse_distance.get_distances(catalogue, "SITE-A", "SITE-B")[0]["distance"] == 3


def test_rse_change_listener_runs_after_commit_only(catalogue):
    seen = []
    rse.RSE_CHANGE_LISTENERS.append(lambda: seen.append(1))
    try:
        rse.add_rse_attribute(catalogue, "SITE-A", "country", "fr")
        assert seen == []
        catalogue.rollback()
        catalogue.commit()
        assert seen == []
        rse.add_rse_attribute(catalogue, "SITE-A", "country", "fr")
        catalogue.commit()
        assert seen == [1]
    finally:
        rse.RSE_CHANGE_LISTENERS.pop()


def test_bulk_replicas_create_files(catalogue):
    assert replica.add_replicas(catalogue, "SITE-A", files(50), "root") == 50
    assert count(catalogue, DataIdentifier) == 50
    assert count(catalogue, Replica) == 50
    # the same files on a second RSE reuse the DIDs
    replica.add_replicas(catalogue, "SITE-B", files(50), "root")
    assert count(catalogue, DataIdentifier) == 50
    listed = list(replica.list_replicas(catalogue, [{"scope": "data", "name": "f1"}]))
    assert sorted(r["rse"] for r in listed[0]["replicas"]) == ["SITE-A", "SITE-B"]


def test_replica_errors_write_nothing(catalogue):
    replica.add_replicas(catalogue, "SITE-A", files(3), "root")
    catalogue.commit()
    before = (count(catalogue, DataIdentifier), count(catalogue, Replica))
    cases = [
        (Duplicate, "SITE-A", files(5)),  # f0-f2 already there
        (FileConsistencyMismatch, "SITE-B", files(3, size=11)),
        (ScopeNotFound, "SITE-A", [{"scope": "nope", "name": "x", "bytes": 1, "adler32": "00000001"}]),
        (RSENotFound, "NOWHERE", files(1, prefix="z")),
        (
            InputValidationError,
            "SITE-A",
            [{"scope": "data", "name": "../etc", "bytes": 1, "adler32": "00000001"}],
        ),
        (
            InputValidationError,
            "SITE-A",
            [{"scope": "data", "name": "n", "bytes": -1, "adler32": "00000001"}],
        ),
        (InputValidationError, "SITE-A", [{"scope": "data", "name": "n", "bytes": 1, "adler32": "xyz"}]),
    ]
    for error, where, payload in cases:
        with pytest.raises(error):
            replica.add_replicas(catalogue, where, payload, "root")
        catalogue.rollback()
        assert (count(catalogue, DataIdentifier), count(catalogue, Replica)) == before


def test_collections_attach_detach_and_listing(catalogue):
    replica.add_replicas(catalogue, "SITE-A", files(4), "root")
    did.add_collection(catalogue, "data", "ds1", "DATASET", "root")
    did.add_collection(catalogue, "data", "ds2", "DATASET", "root")
    did.add_collection(catalogue, "data", "cnt", "CONTAINER", "root")
    did_content.attach(catalogue, "data", "ds1", files(2))
    did_content.attach(catalogue, "data", "ds2", files(4)[2:])
    did_content.attach(
        catalogue, "data", "cnt", [{"scope": "data", "name": "ds1"}, {"scope": "data", "name": "ds2"}]
    )
    assert [f["name"] for f in did_content.list_files(catalogue, "data", "cnt")] == ["f0", "f1", "f2", "f3"]
    assert [c["name"] for c in did_content.list_content(catalogue, "data", "cnt")] == ["ds1", "ds2"]
    assert {p["name"] for p in did_content.list_all_parents(catalogue, "data", "f0")} == {"ds1", "cnt"}
    assert did.get_did(catalogue, "data", "ds1")["length"] == 2
    assert count(catalogue, UpdatedDID) == 3
    did_content.detach(catalogue, "data", "ds1", files(1))
    assert [c["name"] for c in did_content.list_content(catalogue, "data", "ds1")] == ["f1"]
    assert did.get_did(catalogue, "data", "ds1")["bytes"] == 10
    replicas = list(replica.list_replicas(catalogue, [{"scope": "data", "name": "cnt"}]))
    assert [r["name"] for r in replicas] == ["f1", "f2", "f3"]


def test_attach_errors_write_nothing(catalogue):
    replica.add_replicas(catalogue, "SITE-A", files(2), "root")
    did.add_collection(catalogue, "data", "ds", "DATASET", "root")
    did.add_collection(catalogue, "data", "cnt", "CONTAINER", "root")
    did_content.attach(catalogue, "data", "cnt", [{"scope": "data", "name": "ds"}])
    catalogue.commit()
    before = count(catalogue, Content)
    cases = [
        (UnsupportedOperation, "f0", files(1)[:1]),  # attaching to a file
        (UnsupportedOperation, "cnt", files(1)),  # files into a container
        (UnsupportedOperation, "ds", [{"scope": "data", "name": "cnt"}]),  # container into a dataset
        (DataIdentifierNotFound, "ds", [{"scope": "data", "name": "ghost"}]),
        (DataIdentifierNotFound, "nothing", files(1)),
        (UnsupportedOperation, "cnt", [{"scope": "data", "name": "cnt"}]),  # self
        (DuplicateContent, "ds", files(2) + files(1)),
    ]
    for error, parent, children in cases:
        with pytest.raises(error):
            did_content.attach(catalogue, "data", parent, children)
        catalogue.rollback()
        assert count(catalogue, Content) == before


def test_container_cycle_refused(catalogue):
    for name in ("c1", "c2"):
        did.add_collection(catalogue, "data", name, "CONTAINER", "root")
    did_content.attach(catalogue, "data", "c1", [{"scope": "data", "name": "c2"}])
    with pytest.raises(UnsupportedOperation):
        did_content.attach(catalogue, "data", "c2", [{"scope": "data", "name": "c1"}])


def test_close_and_reopen(catalogue):
    replica.add_replicas(catalogue, "SITE-A", files(2), "root")
    did.add_collection(catalogue, "data", "ds", "DATASET", "root")
    did_content.attach(catalogue, "data", "ds", files(2))
    did.set_status(catalogue, "data", "ds", is_open=False)
    info = did.get_did(catalogue, "data", "ds")
    assert (info["open"], info["length"], info["bytes"]) == (False, 2, 20)
    with pytest.raises(UnsupportedOperation):
        did_content.attach(catalogue, "data", "ds", files(3)[2:])
    with pytest.raises(UnsupportedOperation):
        did.set_status(catalogue, "data", "ds", is_open=True)
    did.set_status(catalogue, "data", "ds", is_open=True, is_admin=True)
    assert did.get_did(catalogue, "data", "ds")["open"] is True


def test_duplicate_collection_and_files_not_registrable(catalogue):
    did.add_collection(catalogue, "data", "ds", "DATASET", "root")
    with pytest.raises(DataIdentifierAlreadyExists):
        did.add_collection(catalogue, "data", "ds", "CONTAINER", "root")
    with pytest.raises(UnsupportedOperation):
        did.add_collections(catalogue, [{"scope": "data", "name": "x", "type": "FILE"}], "root")


def test_pattern_listing_escapes_sql_wildcards(catalogue):
    replica.add_replicas(
        catalogue,
        "SITE-A",
        files(3) + [{"scope": "data", "name": "f_x", "bytes": 1, "adler32": "00000001"}],
        "root",
    )

    def names(pattern: str) -> list[str]:  # the name pattern as the web search and the CLI give it
        groups = metadata_filter.with_name_pattern(metadata_filter.parse_filter_string(""), pattern)
        return [d["name"] for d in metadata_filter.list_dids(catalogue, "data", groups, "all")]

    assert names("f*") == ["f0", "f1", "f2", "f_x"]
    assert names("f_*") == ["f_x"]


def test_touch_replicas_records_access(catalogue):
    replica.add_replicas(catalogue, "SITE-A", files(2), "root")
    rse_id = rse.get_rse_id(catalogue, "SITE-A")
    catalogue.execute(Replica.__table__.update().values(accessed_at=None))
    replica.touch_replicas(catalogue, rse_id, [("data", "f1")])
    accessed = dict(catalogue.execute(select(Replica.name, Replica.accessed_at)).all())
    assert accessed["f0"] is None and accessed["f1"] is not None


def test_declare_bad_replicas(catalogue):
    replica.add_replicas(catalogue, "SITE-A", files(2), "root")
    replica_state.declare(catalogue, "SITE-A", [("data", "f0")], BadFilesStatus.BAD, "corrupted", "root")
    assert replica.get_replica(catalogue, "SITE-A", "data", "f0")["state"] == "BAD"
    assert replica.get_replica(catalogue, "SITE-A", "data", "f1")["state"] == "AVAILABLE"
    undeclared = replica_state.declare(
        catalogue, "SITE-A", [("data", "ghost")], BadFilesStatus.BAD, "x", "root"
    )
    assert undeclared == ["data:ghost Unknown replica"]


def test_refused_attach_names_the_attached_file_and_leaves_nothing(catalogue):
    """Files already attached, among new ones: the error names an old one, and no row of the
    refused call stays behind even in a transaction that goes on (no rollback here)."""
    replica.add_replicas(catalogue, "SITE-A", files(4), "root")
    did.add_collection(catalogue, "data", "ds", "DATASET", "root")
    did_content.attach(catalogue, "data", "ds", files(4)[3:])
    with pytest.raises(DuplicateContent, match="data:f3"):
        did_content.attach(catalogue, "data", "ds", files(4))
    assert [c["name"] for c in did_content.list_content(catalogue, "data", "ds")] == ["f3"]
    info = did.get_did(catalogue, "data", "ds")
    assert (info["length"], info["bytes"]) == (1, 10)
    with pytest.raises(DataIdentifierNotFound, match="ghost"):
        did_content.attach(catalogue, "data", "ds", files(3) + [{"scope": "data", "name": "ghost"}])
    assert count(catalogue, Content) == 1


def test_attach_files_of_several_scopes(catalogue):
    scope.add_scope(catalogue, "more", "root")
    other = [{**f, "scope": "more"} for f in files(2, size=5)]
    replica.add_replicas(catalogue, "SITE-A", files(2) + other, "root")
    did.add_collection(catalogue, "data", "ds", "DATASET", "root")
    assert did_content.attach(catalogue, "data", "ds", [*files(2), *other]) == 4
    assert sorted((c["scope"], c["name"]) for c in did_content.list_content(catalogue, "data", "ds")) == [
        ("data", "f0"),
        ("data", "f1"),
        ("more", "f0"),
        ("more", "f1"),
    ]
    info = did.get_did(catalogue, "data", "ds")
    assert (info["length"], info["bytes"]) == (4, 30)

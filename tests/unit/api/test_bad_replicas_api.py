"""Bad, suspicious and quarantined replicas over REST, with recovery end to end.

Real app, two POSIX RSEs under tmp_path, the real necromancer, conveyor (local transfer
tool) and reaper: a corrupted replica declared bad by PFN is copied again from the good one;
a bad last copy is declared lost and the reaper removes it.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from datamgmt.config import reset_config
from datamgmt.core import did, did_content, replica, rse, rule, scope
from datamgmt.core.db.constants import DIDAvailability, ReplicaState, RuleState
from datamgmt.core.db.models import DataIdentifier, Replica, Rule
from datamgmt.daemons.conveyor import tools
from datamgmt.daemons.necromancer import Necromancer
from datamgmt.daemons.reaper import Reaper
from datamgmt.rse.protocols import create_protocol
from tests.invariants import check_invariants
from tests.unit.api.conftest import make_account
from tests.unit.daemons.test_reaper_race import drain_conveyor

DATA = {"a.root": b"a" * 300, "b.root": b"b" * 500}
STREAM, JSON = "application/x-json-stream", "application/json"


@pytest.fixture
def sites(session: Session, root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """SITE and SRC (POSIX under tmp_path) both hold ``a.root``; ``b.root`` is on SITE only.
    Root's rule holds dataset ``ds`` (both files) on SITE."""
    monkeypatch.setenv("DATAMGMT_CONVEYOR_TRANSFERTOOL", "local")
    monkeypatch.setenv("DATAMGMT_CONVEYOR_POLL_INTERVAL", "0")
    reset_config()
    scope.add_scope(session, "data", "root")
    for name in ("SITE", "SRC"):
        rse.add_rse(session, name)
        rse.add_protocol(session, name, {"scheme": "file", "prefix": str(tmp_path / name), "impl": "posix"})
    for name, content in DATA.items():
        for site in ("SITE", "SRC") if name == "a.root" else ("SITE",):
            write(session, site, name, content)
    did.add_collection(session, "data", "ds", "DATASET", "root")
    did_content.attach(session, "data", "ds", [{"scope": "data", "name": n} for n in DATA])
    rule.add_rule(session, [{"scope": "data", "name": "ds"}], "root", 1, "SITE")
    session.commit()
    yield tmp_path
    tools.reset()
    reset_config()


def write(session: Session, site: str, name: str, content: bytes) -> None:
    item = {"scope": "data", "name": name, "bytes": len(content), "adler32": f"{zlib.adler32(content):08x}"}
    replica.add_replicas(session, site, [item], "root")
    file_of(session, site, name).parent.mkdir(parents=True, exist_ok=True)
    file_of(session, site, name).write_bytes(content)


def pfn_of(session: Session, site: str, name: str) -> str:
    protocol = create_protocol(rse.list_protocols(session, site)[0])
    return next(iter(protocol.lfns2pfns([{"scope": "data", "name": name}]).values()))


def file_of(session: Session, site: str, name: str) -> Path:
    return Path(pfn_of(session, site, name).removeprefix("file://"))


def post(client: FlaskClient, url: str, body: object, headers: dict[str, str], method: str = "POST"):
    return client.open(url, method=method, data=json.dumps(body), headers=headers)


def lines(response) -> list[dict]:
    assert response.status_code == 200 and response.content_type == STREAM, response.data
    return [json.loads(line) for line in response.data.decode().splitlines()]


def failure(response) -> tuple[int, str]:
    """Status and Rucio exception class of an error answer (header and body agree)."""
    body = json.loads(response.data)
    assert response.headers["ExceptionClass"] == body["ExceptionClass"]
    return response.status_code, body["ExceptionClass"]


def the_rule(session: Session) -> Rule:
    session.expire_all()
    return session.scalars(select(Rule)).one()


def test_a_corrupted_replica_declared_bad_is_copied_again_from_the_good_one(
    client: FlaskClient, session: Session, sites: Path, root_headers: dict, db: str
) -> None:
    corrupted = file_of(session, "SITE", "a.root")
    corrupted.write_bytes(b"x" * 300)
    pfn = pfn_of(session, "SITE", "a.root")
    session.rollback()
    answer = post(client, "/replicas/bad", {"replicas": [pfn], "reason": "checksum mismatch"}, root_headers)
    assert (answer.status_code, answer.content_type, answer.json) == (201, JSON, {})
    again = post(client, "/replicas/bad", {"pfns": [pfn], "reason": "again"}, root_headers)
    assert again.json == {"SITE": ["data:a.root Already declared"]}
    assert the_rule(session).state == RuleState.STUCK
    session.rollback()

    assert Necromancer(db_url=db).run_once(100) == 1
    drain_conveyor(db, session)
    assert corrupted.read_bytes() == DATA["a.root"]
    done = the_rule(session)
    assert (done.state, done.locks_ok_cnt) == (RuleState.OK, 2)
    session.rollback()
    recovered = lines(client.get("/replicas/bad/states?state=RECOVERED", headers=root_headers))
    assert [(r["scope"], r["name"], r["rse"], r["state"]) for r in recovered] == [
        ("data", "a.root", "SITE", "RECOVERED")
    ]
    assert lines(client.get("/replicas/bad/states", headers=root_headers)) == []
    check_invariants(session)


def test_a_bad_last_copy_is_lost_and_reaped(
    client: FlaskClient, session: Session, sites: Path, root_headers: dict, db: str
) -> None:
    session.rollback()
    answer = post(
        client,
        "/replicas/bad/dids",
        {
            "dids": [{"scope": "data", "name": "b.root"}, {"scope": "data", "name": "nope"}],
            "rse": "SITE",
            "reason": "disk died",
        },
        root_headers,
    )
    assert (answer.status_code, answer.content_type, answer.json) == (
        201,
        JSON,
        ["data:nope Unknown replica"],
    )
    assert Necromancer(db_url=db).run_once(100) == 1
    session.expire_all()
    assert session.get(DataIdentifier, ("data", "b.root")).availability == DIDAvailability.LOST
    kept = the_rule(session)
    assert (kept.state, kept.locks_ok_cnt, kept.locks_stuck_cnt) == (RuleState.OK, 1, 0)
    session.rollback()
    for _ in range(5):
        Reaper(db_url=db).run_once(100)
    assert not file_of(session, "SITE", "b.root").exists()
    assert session.get(Replica, ("data", "b.root", rse.get_rse_id(session, "SITE"))) is None
    lost = lines(client.get("/replicas/bad/states?state=L&rse=SITE", headers=root_headers))
    assert [(r["name"], r["state"], r["reason"]) for r in lost] == [("b.root", "LOST", "disk died")]
    summary = lines(client.get("/replicas/bad/summary?rse_expression=SITE", headers=root_headers))
    assert [(s["rse"], s["reason"], s["LOST"]) for s in summary] == [("SITE", "disk died", 1)]
    assert lines(client.get("/replicas/bad/summary?rse_expression=SRC", headers=root_headers)) == []
    check_invariants(session)


def test_suspicious_reports_are_open_to_users_and_listed(
    client: FlaskClient, session: Session, sites: Path, root_headers: dict
) -> None:
    jdoe = make_account(session, "jdoe")
    pfns = [pfn_of(session, "SITE", "a.root"), "file:///nowhere/at/all"]
    session.rollback()
    for _ in range(2):
        answer = post(client, "/replicas/suspicious", {"pfns": pfns, "reason": "slow read"}, jdoe)
        assert (answer.status_code, answer.content_type) == (201, JSON)
        assert answer.json == {"unknown": ["file:///nowhere/at/all Unknown replica"]}
    listed = client.get("/replicas/suspicious?rse_expression=SITE&nattempts=1", headers=jdoe)
    assert (listed.status_code, listed.content_type) == (200, JSON)
    assert [(r["name"], r["rse"], r["cnt"]) for r in listed.json] == [("a.root", "SITE", 2)]
    assert client.get("/replicas/suspicious?nattempts=2", headers=jdoe).json == []
    bad_date = client.get("/replicas/suspicious?younger_than=yesterday", headers=jdoe)
    assert failure(bad_date) == (400, "InputValidationError")
    session.expire_all()
    assert (
        session.get(Replica, ("data", "a.root", rse.get_rse_id(session, "SITE"))).state
        == ReplicaState.AVAILABLE
    )


def test_pfn_declarations_states_and_errors(
    client: FlaskClient, session: Session, sites: Path, root_headers: dict
) -> None:
    pfn = pfn_of(session, "SRC", "a.root")
    session.rollback()
    unavailable = post(
        client,
        "/replicas/bad/pfns",
        {
            "pfns": [pfn],
            "state": "TEMPORARY_UNAVAILABLE",
            "reason": "downtime",
            "expires_at": "2099-01-01T00:00:00.000000",
        },
        root_headers,
    )
    assert failure(unavailable) == (400, "InputValidationError")
    answer = post(
        client, "/replicas/bad/pfns", {"pfns": [pfn], "state": "SUSPICIOUS", "reason": "r"}, root_headers
    )
    assert (answer.status_code, answer.data) == (201, b"Created")
    for body, status, error in (
        ({"pfns": ["file:///elsewhere/x"], "state": "BAD"}, 404, "ReplicaNotFound"),
        ({"pfns": [pfn], "state": "LOST"}, 400, "InvalidObject"),  # the body schema's enum, Rucio's class
        ({"pfns": [pfn], "state": "BAD", "expires_at": "2099-01-01"}, 400, "InputValidationError"),
    ):
        refused = post(client, "/replicas/bad/pfns", body, root_headers)
        assert failure(refused) == (status, error), body
    mixed = post(
        client,
        "/replicas/bad",
        {"replicas": [pfn, {"scope": "data", "name": "a.root", "rse": "SRC"}]},
        root_headers,
    )
    assert failure(mixed) == (400, "InvalidType")
    by_dict = post(
        client,
        "/replicas/bad",
        {"replicas": [{"scope": "data", "name": "a.root", "rse": "SRC"}]},
        root_headers,
    )
    assert (by_dict.status_code, by_dict.json) == (201, {})
    bad_state = client.get("/replicas/bad/states?state=NOPE", headers=root_headers)
    assert bad_state.status_code == 400
    pfns = lines(client.get("/replicas/bad/states?list_pfns=True", headers=root_headers))
    assert pfns == [pfn]


def test_tombstones_quarantine_and_deletion(
    client: FlaskClient, session: Session, sites: Path, root_headers: dict
) -> None:
    session.rollback()
    free = {"rse": "SRC", "scope": "data", "name": "a.root"}
    answer = post(client, "/replicas/tombstone", {"replicas": [free]}, root_headers)
    assert (answer.status_code, answer.data) == (201, b"Created")
    locked = post(client, "/replicas/tombstone", {"replicas": [{**free, "rse": "SITE"}]}, root_headers)
    assert failure(locked) == (423, "ReplicaIsLocked")
    ghost = post(client, "/replicas/tombstone", {"replicas": [{**free, "name": "ghost"}]}, root_headers)
    assert failure(ghost) == (404, "ReplicaNotFound")

    dark = {"path": "dark/file", "scope": "data", "name": "dark"}
    quarantined = post(client, "/replicas/quarantine", {"rse": "SRC", "replicas": [dark]}, root_headers)
    assert (quarantined.status_code, quarantined.data) == (200, b"")
    both = post(
        client, "/replicas/quarantine", {"rse": "SRC", "rse_id": "x", "replicas": [dark]}, root_headers
    )
    assert both.status_code == 400

    files = {"rse": "SITE", "files": [{"scope": "data", "name": "a.root"}]}
    refused = post(client, "/replicas", files, root_headers, method="DELETE")
    assert failure(refused) == (423, "ReplicaIsLocked")
    forgotten = post(client, "/replicas", {**files, "rse": "SRC"}, root_headers, method="DELETE")
    assert (forgotten.status_code, forgotten.data) == (200, b"")
    session.expire_all()
    assert session.get(Replica, ("data", "a.root", rse.get_rse_id(session, "SRC"))) is None
    session.rollback()
    missing = post(client, "/replicas", {**files, "rse": "SRC"}, root_headers, method="DELETE")
    assert failure(missing) == (404, "ReplicaNotFound")


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "/replicas/bad", {"replicas": [{"scope": "data", "name": "a.root", "rse": "SRC"}]}),
        ("POST", "/replicas/bad/dids", {"dids": [{"scope": "data", "name": "a.root"}], "rse": "SRC"}),
        ("POST", "/replicas/bad/pfns", {"pfns": [], "state": "BAD"}),
        ("POST", "/replicas/tombstone", {"replicas": [{"scope": "data", "name": "a.root", "rse": "SRC"}]}),
        ("POST", "/replicas/quarantine", {"rse": "SRC", "replicas": [{"path": "x"}]}),
        ("DELETE", "/replicas", {"rse": "SRC", "files": [{"scope": "data", "name": "a.root"}]}),
    ],
)
def test_ending_a_replica_is_for_admins(
    client: FlaskClient, session: Session, sites: Path, method: str, url: str, body: dict
) -> None:
    jdoe = make_account(session, "jdoe")
    refused = post(client, url, body, jdoe, method=method)
    assert failure(refused) == (401, "AccessDenied")
    session.expire_all()
    assert (
        session.get(Replica, ("data", "a.root", rse.get_rse_id(session, "SRC"))).state
        == ReplicaState.AVAILABLE
    )
    session.rollback()

"""Replica paths (issue 15, defect 2): a caller never chooses where a replica lives on a
deterministic RSE, and two replicas of one RSE never share a path, so deleting one replica can
never destroy another's file.

The first test is the attack end to end on real POSIX storage with the real reaper.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from datamgmt.core import did, replica, rse, rule, rule_update, scope
from datamgmt.core.account import add_account
from datamgmt.core.db.constants import ReplicaState
from datamgmt.core.db.models import DataIdentifier, Replica
from datamgmt.core.db.types import utcnow
from datamgmt.core.quota import set_local_account_limit
from datamgmt.daemons.reaper import Reaper
from datamgmt.exceptions import Duplicate, InputValidationError, InvalidPath
from datamgmt.rse.lfn2pfn import lfn2path
from datamgmt.rse.protocols import create_protocol

VICTIM_FILE = {"scope": "alice", "name": "thesis.root", "bytes": 6, "adler32": "0000000a"}
ATTACKER_FILE = {"scope": "mallory", "name": "bait.root", "bytes": 4, "adler32": "0000000b"}


@pytest.fixture
def site(session: Session, root: str, tmp_path: Path):
    """RSE SITE on POSIX storage under tmp_path; accounts alice and mallory with a scope each;
    alice's file is on disk and registered AVAILABLE at the algorithm's path."""
    rse.add_rse(session, "SITE")
    rse.add_protocol(session, "SITE", {"scheme": "file", "prefix": str(tmp_path / "site"), "impl": "posix"})
    for account in ("alice", "mallory"):
        add_account(session, account, "USER")
        scope.add_scope(session, account, account)
        set_local_account_limit(session, account, "SITE", -1)
    replica.add_replicas(session, "SITE", [VICTIM_FILE], "alice")
    protocol = create_protocol(rse.list_protocols(session, "SITE")[0])
    write(protocol, VICTIM_FILE, b"thesis")
    session.commit()
    return protocol


def local_file(protocol, file: dict) -> Path:
    (pfn,) = protocol.lfns2pfns([file]).values()
    return Path(pfn.removeprefix("file://"))


def write(protocol, file: dict, content: bytes) -> Path:
    path = local_file(protocol, file)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def victim_path() -> str:
    return lfn2path(VICTIM_FILE["scope"], VICTIM_FILE["name"])


def test_attack_by_path_then_purge_leaves_the_victims_file_and_catalogue_true(session, site, db):
    """Register a bait file at the victim's path, purge it through a rule: the victim loses nothing."""
    try:
        replica.add_replicas(session, "SITE", [{**ATTACKER_FILE, "path": victim_path()}], "mallory")
        session.commit()
    except InputValidationError:
        session.rollback()  # refused: the attacker can only register the bait at its own path
        replica.add_replicas(session, "SITE", [ATTACKER_FILE], "mallory")
        write(site, ATTACKER_FILE, b"bait")
        session.commit()
    rule_id = rule.add_rule(
        session, [{"scope": "mallory", "name": "bait.root"}], "mallory", 1, "SITE", purge_replicas=True
    )[0]
    session.commit()
    rule_update.delete_rule(session, rule_id, issuer="mallory", purge_replicas=True)
    session.commit()
    reaper = Reaper("attack", db_url=db)
    for _ in range(10):
        reaper.run_once(100)

    assert local_file(site, VICTIM_FILE).read_bytes() == b"thesis"
    row = session.get(Replica, ("alice", "thesis.root", rse.get_rse_id(session, "SITE")))
    assert row is not None and row.state == ReplicaState.AVAILABLE and row.path == victim_path()
    assert session.scalar(select(func.count()).where(Replica.name == "bait.root")) == 0


@pytest.mark.parametrize(
    "path", [victim_path(), "/" + victim_path(), "alice/x/y/thesis.root", "mallory/bait.root"]
)
def test_deterministic_rse_refuses_any_path_but_the_algorithms(session, site, path):
    with pytest.raises(InputValidationError, match="deterministic"):
        replica.add_replicas(session, "SITE", [{**ATTACKER_FILE, "path": path}], "mallory")
    # Refused before any write: not even the file DID was created.
    assert session.scalar(select(func.count()).where(DataIdentifier.scope == "mallory")) == 0


def test_deterministic_rse_refuses_a_foreign_pfn_and_accepts_its_own(session, site):
    (foreign,) = site.lfns2pfns([VICTIM_FILE]).values()
    with pytest.raises(InputValidationError, match="deterministic"):
        replica.add_replicas(session, "SITE", [{**ATTACKER_FILE, "pfn": foreign}], "mallory")
    session.rollback()
    (own,) = site.lfns2pfns([ATTACKER_FILE]).values()
    own_path = lfn2path("mallory", "bait.root")
    replica.add_replicas(session, "SITE", [{**ATTACKER_FILE, "pfn": own, "path": "/" + own_path}], "mallory")
    assert replica.get_replica(session, "SITE", "mallory", "bait.root")["path"] == own_path


def test_every_replica_stores_its_path_registered_or_created_by_a_rule(session, site):
    rse.add_rse(session, "OTHER")
    rse.add_rse_attribute(session, "OTHER", "lfn2pfn_algorithm", "identity")
    set_local_account_limit(session, "alice", "OTHER", -1)
    rule.add_rule(session, [{"scope": "alice", "name": "thesis.root"}], "alice", 1, "OTHER")
    copying = session.get(Replica, ("alice", "thesis.root", rse.get_rse_id(session, "OTHER")))
    assert copying is not None and copying.state == ReplicaState.COPYING
    assert copying.path == "alice/thesis.root"  # the destination's own algorithm
    assert session.scalar(select(func.count()).where(Replica.path.is_(None))) == 0


@pytest.fixture
def tape(session: Session, site) -> str:
    rse.add_rse(session, "TAPE", deterministic=False)
    rse.add_protocol(
        session, "TAPE", {"scheme": "root", "hostname": "tape.example.org", "port": 1094, "prefix": "/store"}
    )
    session.commit()
    return "TAPE"


def test_non_deterministic_rse_takes_one_spelling_per_file_and_refuses_a_second_replica_there(session, tape):
    replica.add_replicas(session, tape, [{**VICTIM_FILE, "path": "/run1/thesis.root"}], "alice")
    assert replica.get_replica(session, tape, "alice", "thesis.root")["path"] == "run1/thesis.root"
    for spelling in ("run1/thesis.root", "/run1/thesis.root"):
        with pytest.raises(Duplicate, match="already used by the replica of 'alice:thesis.root'"):
            replica.add_replicas(session, tape, [{**ATTACKER_FILE, "path": spelling}], "mallory")
        session.rollback()
        replica.add_replicas(session, tape, [{**VICTIM_FILE, "path": "/run1/thesis.root"}], "alice")
    with pytest.raises(Duplicate, match="already used"):
        replica.add_replicas(
            session,
            tape,
            [{**ATTACKER_FILE, "pfn": "root://tape.example.org:1094//store/run1/thesis.root"}],
            "mallory",
        )


@pytest.mark.parametrize(
    "path", ["run1//thesis.root", "run1/./thesis.root", "run1/../alice/x", "run%2fthesis", "run1/\\x", ""]
)
def test_non_deterministic_rse_refuses_paths_with_two_spellings_or_an_escape(session, tape, path):
    with pytest.raises(InvalidPath):
        replica.add_replicas(session, tape, [{**ATTACKER_FILE, "path": path}], "mallory")


def test_non_deterministic_rse_needs_a_path_and_a_pfn_on_its_own_storage(session, tape):
    with pytest.raises(InputValidationError, match="non-deterministic"):
        replica.add_replicas(session, tape, [ATTACKER_FILE], "mallory")
    with pytest.raises(InvalidPath, match="not below any protocol"):
        replica.add_replicas(
            session, tape, [{**ATTACKER_FILE, "pfn": "root://elsewhere.org:1094/store/x"}], "mallory"
        )


def test_one_request_cannot_put_two_files_at_one_path(session, tape):
    with pytest.raises(Duplicate, match="two replicas at path"):
        replica.add_replicas(
            session, tape, [{**VICTIM_FILE, "path": "p/x"}, {**ATTACKER_FILE, "path": "/p/x"}], "root"
        )


def test_the_database_itself_refuses_a_shared_path(session, site):
    """The constraint, not only the checks: a row written around core is still refused."""
    did.add_files(
        session, [{"scope": "mallory", "name": "raw", "bytes": 1, "adler32": "00000001"}], "mallory"
    )
    now = utcnow()
    with pytest.raises(IntegrityError):
        session.execute(
            insert(Replica).values(
                scope="mallory",
                name="raw",
                rse_id=rse.get_rse_id(session, "SITE"),
                bytes=1,
                path=victim_path(),
                state=ReplicaState.AVAILABLE,
                lock_cnt=0,
                delete_failures=0,
                created_at=now,
                updated_at=now,
            )
        )


def test_a_registration_looks_up_paths_in_use_only_when_the_index_refuses_one(session, tape):
    """Asked before every insert, the lookup cost each chunk a query, and on a catalogue that
    PostgreSQL had not analyzed yet a read of every replica of the RSE: 30 chunks of 500 files
    slowed from 36 ms to 490 ms a chunk until autovacuum analyzed the table."""
    statements: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, _many):  # type: ignore[no-untyped-def]
        statements.append(" ".join(statement.split()))

    engine = session.get_bind().engine
    before = session.scalar(select(func.count()).select_from(Replica))
    event.listen(engine, "before_cursor_execute", record)
    try:
        replica.add_replicas(session, tape, [{**VICTIM_FILE, "path": "/run1/thesis.root"}], "alice")
        assert not [s for s in statements if s.startswith("SELECT") and "replicas.path" in s]
        with pytest.raises(Duplicate, match="already used by the replica of 'alice:thesis.root'"):
            replica.add_replicas(session, tape, [{**ATTACKER_FILE, "path": "run1/thesis.root"}], "mallory")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert [s for s in statements if s.startswith("SELECT") and "replicas.path" in s], (
        "only after the refusal"
    )
    assert replica.get_replica(session, tape, "alice", "thesis.root")["path"] == "run1/thesis.root"
    assert session.scalar(select(func.count()).select_from(Replica)) == before + 1, (
        "the refused row is not kept"
    )

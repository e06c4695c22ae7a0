"""Issue 15, defects 2 and 3 over REST, as two accounts: mallory tries to make the system delete
alice's file (a replica registered at alice's path, then a rule purged), and alice loses nothing.

Real app, real POSIX storage under tmp_path, the real reaper.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.core import rse
from datamgmt.core.quota import set_local_account_limit
from datamgmt.core.scope import add_scope
from datamgmt.daemons.reaper import Reaper
from datamgmt.rse.lfn2pfn import lfn2path
from tests.unit.api.conftest import make_account

THESIS = {"scope": "alice", "name": "thesis.root", "bytes": 6, "adler32": "0000000a"}
BAIT = {"scope": "mallory", "name": "bait.root", "bytes": 4, "adler32": "0000000b"}


@pytest.fixture
def world(session: Session, root: str, tmp_path: Path) -> dict[str, dict[str, str]]:
    """SITE: user storage (``type=SCRATCHDISK``) on POSIX under tmp_path; accounts alice and mallory."""
    rse.add_rse(session, "SITE")
    rse.add_rse_attribute(session, "SITE", "type", "SCRATCHDISK")
    rse.add_protocol(session, "SITE", {"scheme": "file", "prefix": str(tmp_path), "impl": "posix"})
    headers = {}
    for account in ("alice", "mallory"):
        headers[account] = make_account(session, account)
        add_scope(session, account, account)
        set_local_account_limit(session, account, "SITE", -1)
    session.commit()
    return headers


def on_disk(tmp_path: Path, file: dict, content: bytes | None = None) -> Path:
    path = tmp_path / lfn2path(file["scope"], file["name"])
    if content is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return path


def post(client: FlaskClient, url: str, body: object, headers: dict[str, str], method: str = "POST"):
    return client.open(url, method=method, data=json.dumps(body), headers=headers)


def test_mallory_cannot_make_the_reaper_delete_alices_file(client, world, tmp_path, db):
    alice, mallory = world["alice"], world["mallory"]
    assert post(client, "/replicas", {"rse": "SITE", "files": [THESIS]}, alice).status_code == 201
    thesis = on_disk(tmp_path, THESIS, b"thesis")

    # 1. A replica of mallory's own file at alice's path.
    stolen_path = post(
        client,
        "/replicas",
        {"rse": "SITE", "files": [{**BAIT, "path": lfn2path("alice", "thesis.root")}]},
        mallory,
    )
    if stolen_path.status_code != 201:
        assert (
            stolen_path.status_code == 400 and stolen_path.headers["ExceptionClass"] == "InputValidationError"
        )
        assert post(client, "/replicas", {"rse": "SITE", "files": [BAIT]}, mallory).status_code == 201
        on_disk(tmp_path, BAIT, b"bait")
    # 2. A rule that purges its replicas when it goes, then its deletion.
    bait_rule = {
        "dids": [{"scope": "mallory", "name": "bait.root"}],
        "copies": 1,
        "rse_expression": "SITE",
        "account": None,
    }
    purging = post(client, "/rules/", {**bait_rule, "purge_replicas": True}, mallory)
    if purging.status_code != 201:
        assert purging.status_code == 401 and purging.headers["ExceptionClass"] == "AccessDenied"
        purging = post(client, "/rules/", bait_rule, mallory)
    rule_id = json.loads(purging.get_data(as_text=True))[0]
    deleted = post(client, f"/rules/{rule_id}", {"purge_replicas": True}, mallory, method="DELETE")
    if deleted.status_code != 200:
        assert deleted.status_code == 401 and deleted.headers["ExceptionClass"] == "AccessDenied"
        assert post(client, f"/rules/{rule_id}", {}, mallory, method="DELETE").status_code == 200
    reaper = Reaper("hostile", db_url=db)
    for _ in range(5):
        reaper.run_once(100)

    assert thesis.read_bytes() == b"thesis"
    listing = client.get("/replicas/alice/thesis.root", headers=alice)
    (entry,) = [json.loads(line) for line in listing.get_data(as_text=True).splitlines()]
    assert entry["states"] == {"SITE": "AVAILABLE"}
    (pfn,) = entry["pfns"]
    assert Path(pfn.removeprefix("file://")) == thesis


def test_a_shared_path_is_a_clean_409(client, world, root_headers, session):
    rse.add_rse(session, "TAPE", deterministic=False)
    session.commit()
    first = post(client, "/replicas", {"rse": "TAPE", "files": [{**THESIS, "path": "/run1/f"}]}, root_headers)
    assert first.status_code == 201
    second = post(client, "/replicas", {"rse": "TAPE", "files": [{**BAIT, "path": "run1/f"}]}, root_headers)
    assert second.status_code == 409 and second.headers["ExceptionClass"] == "Duplicate"


def test_users_register_only_on_user_storage_in_their_own_scope(client, world, session):
    rse.add_rse(session, "DATADISK")
    session.commit()
    refusals = [
        post(client, "/replicas", {"rse": "DATADISK", "files": [THESIS]}, world["alice"]),  # not user storage
        post(
            client, "/replicas", {"rse": "SITE", "files": [THESIS]}, world["mallory"]
        ),  # not mallory's scope
    ]
    assert [(r.status_code, r.headers["ExceptionClass"]) for r in refusals] == [(401, "AccessDenied")] * 2

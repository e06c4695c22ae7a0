"""``check_storage`` and ``datamgmt-admin check``: files on a POSIX RSE against the catalogue.

The storage is real (a directory written through the RSE's protocol); it is damaged on disk
and each kind of disagreement must be reported.  The CLI's exit status follows the report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from datamgmt.core import rse
from datamgmt.core.account import add_account
from datamgmt.core.db.models import Replica
from datamgmt.core.invariants import check, check_storage
from datamgmt.core.replica import add_replicas, update_replica_states
from datamgmt.core.scope import add_scope
from datamgmt.rse.protocols import Protocol, create_protocol

FILES = {f"f{i}": b"x" * (10 + i) for i in range(3)}


@pytest.fixture
def site(session: Session, root: str, tmp_path: Path) -> Protocol:
    """RSE SITE on ``tmp_path`` holding FILES, every one an AVAILABLE replica."""
    add_account(session, "jdoe", "USER")
    add_scope(session, "mock", "jdoe")
    record = {"scheme": "file", "prefix": str(tmp_path / "site"), "impl": "posix"}
    rse.add_rse(session, "SITE")
    rse.add_protocol(session, "SITE", record)
    rse.add_rse(session, "BARE")  # no protocol: cannot be walked
    protocol = create_protocol(record)
    for name, data in FILES.items():
        local = tmp_path / name
        local.write_bytes(data)
        protocol.put(str(local), protocol.lfns2pfns([{"scope": "mock", "name": name}])[f"mock:{name}"])
    add_replicas(
        session,
        "SITE",
        [{"scope": "mock", "name": n, "bytes": len(d), "adler32": "00000001"} for n, d in FILES.items()],
        "jdoe",
    )
    session.commit()
    return protocol


def _disk(protocol: Protocol, name: str) -> Path:
    return Path(protocol.lfns2pfns([{"scope": "mock", "name": name}])[f"mock:{name}"].removeprefix("file://"))


def test_listing_matches_the_replicas(session: Session, site: Protocol) -> None:
    report = check_storage(session)
    assert report.ok, report.render()
    assert report.skipped == ["storage of BARE: the RSE has no protocol"]
    assert {pfn: size for pfn, size in site.list_files()} == {
        site.lfns2pfns([{"scope": "mock", "name": n}])[f"mock:{n}"]: len(d) for n, d in FILES.items()
    }


def test_missing_truncated_and_dark_files_are_reported(
    session: Session, site: Protocol, tmp_path: Path
) -> None:
    _disk(site, "f0").unlink()
    _disk(site, "f1").write_bytes(b"short")
    dark = tmp_path / "site" / "stray" / "dark.dat"
    dark.parent.mkdir(parents=True)
    dark.write_bytes(b"nobody's")
    outside = tmp_path / "outside.dat"
    outside.write_bytes(b"not below the prefix")
    (tmp_path / "site" / "link").symlink_to(tmp_path, target_is_directory=True)
    found = {v.invariant: v for v in check_storage(session).violations}
    assert set(found) == {"storage_missing", "storage_size", "storage_dark"}
    assert [e["name"] for e in found["storage_missing"].examples] == ["f0"]
    assert found["storage_size"].examples[0]["on_disk"] == len(b"short")
    dark_pfns = {e["pfn"] for e in found["storage_dark"].examples}
    assert dark_pfns == {f"file://{dark}", f"file://{tmp_path / 'site' / 'link'}"}, "links are never followed"


def test_only_available_replicas_need_their_file(session: Session, site: Protocol) -> None:
    """A COPYING replica's file may not have arrived yet; its row still makes a file not dark."""
    _disk(site, "f0").unlink()
    update_replica_states(session, "SITE", [{"scope": "mock", "name": "f0", "state": "COPYING"}])
    session.commit()
    assert check_storage(session).ok


def _admin(*args: str) -> int:
    from datamgmt.cli.errors import run_cli
    from datamgmt.manage import build_cli

    return run_cli(build_cli(), ["check", *args])


def test_cli_exit_status_and_json(db: str, site: Protocol, capsys: pytest.CaptureFixture[str]) -> None:
    assert _admin("--db-url", db) == 0
    assert "invariants hold; 0 violated" in capsys.readouterr().out
    assert _admin("--db-url", db, "--storage", "--json") == 0
    assert json.loads(capsys.readouterr().out)["skipped"] == ["storage of BARE: the RSE has no protocol"]
    _disk(site, "f2").unlink()
    assert _admin("--db-url", db, "--storage") == 1
    out = capsys.readouterr().out
    assert "VIOLATED storage_missing (1)" in out and "name=f2" in out
    assert _admin("--db-url", db) == 0, "without --storage the catalogue alone is checked"


@pytest.mark.corrupts_catalogue
def test_cli_reports_a_corrupt_catalogue(
    db: str, session: Session, site: Protocol, capsys: pytest.CaptureFixture[str]
) -> None:
    session.execute(update(Replica).where(Replica.name == "f0").values(lock_cnt=3))
    session.commit()
    assert _admin("--db-url", db, "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"]
    (violation,) = report["violations"]
    assert (violation["invariant"], violation["count"]) == ("replica_lock_cnt", 1)
    assert violation["examples"] == [
        {"scope": "mock", "name": "f0", "rse": "SITE", "lock_cnt": 3, "locks": 0}
    ]
    assert not check(session).ok


def test_names_with_a_leading_slash_match_their_files(
    session: Session, site: Protocol, tmp_path: Path
) -> None:
    """CMS-style names (``/store/...``) are legal; the hash path then holds ``//``, which names
    the same file as the listing's single ``/``: neither missing nor dark."""
    name = "/store/mc/run1/file.root"
    local = tmp_path / "cms"
    local.write_bytes(b"cms data")
    pfn = site.lfns2pfns([{"scope": "mock", "name": name}])[f"mock:{name}"]
    assert "//store" in pfn
    site.put(str(local), pfn)
    add_replicas(
        session, "SITE", [{"scope": "mock", "name": name, "bytes": 8, "adler32": "00000001"}], "jdoe"
    )
    session.commit()
    report = check_storage(session, rses=["SITE"])
    assert report.ok, report.render()
    Path(pfn.removeprefix("file://")).unlink()
    found = {v.invariant: v for v in check_storage(session, rses=["SITE"]).violations}
    assert set(found) == {"storage_missing"} and found["storage_missing"].examples[0]["name"] == name

"""Every ``datamgmt`` command against a live server, in table and in ``--json`` output."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from tests.integration.cli.conftest import Live

pytestmark = pytest.mark.integration

RULES = "/rules/"
PUBLISH = "/dids/<scope>/<path:name>/publish"


def ok(result, code: int = 0) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == code, result.output
    return result.stdout


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def dataset(live: Live, two_rses: tuple[str, str], tmp_path: Path) -> str:
    """``user.root:ds`` holding f1 (1000 bytes) and f2 (2000 bytes) on SITE-A."""
    for name, size in (("f1", 1000), ("f2", 2000)):
        (tmp_path / name).write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
    ok(
        live.user(
            "upload",
            "--rse",
            "SITE-A",
            "--scope",
            "user.root",
            "--dataset",
            "user.root:ds",
            "--no-rule",
            str(tmp_path / "f1"),
            str(tmp_path / "f2"),
        )
    )
    return "user.root:ds"


def test_whoami_and_ping(live: Live) -> None:
    assert "root" in ok(live.user("whoami"))
    assert json.loads(ok(live.user("whoami", "--json")))["account"] == "root"
    assert "version" in ok(live.user("ping"))
    assert "version" in json.loads(ok(live.user("--json", "ping")))


def test_did_commands(live: Live, dataset: str) -> None:
    table = ok(live.user("did", "list", "user.root:*"))
    assert "ds" in table and "DATASET" in table and "3.0 kB" in table
    rows = json_lines(ok(live.user("did", "list", "user.root:f*", "--json")))
    assert {row["name"] for row in rows} == {"f1", "f2"}
    assert "3000" in ok(live.user("did", "show", dataset, "--bytes"))
    assert json.loads(ok(live.user("did", "show", dataset, "--json")))["did_type"] == "DATASET"

    ok(live.user("did", "add", "user.root:ds2"))
    assert json.loads(ok(live.user("did", "add", "--type", "container", "user.root:cont", "--json")))[
        "did_type"
    ] == ("CONTAINER")
    assert "attached 1" in ok(live.user("did", "attach", "user.root:cont", dataset))
    assert json.loads(ok(live.user("did", "attach", "user.root:ds2", "user.root:f1", "--json"))) == {
        "attached": 1
    }
    assert "user.root" in ok(live.user("did", "content", "user.root:cont"))
    assert {row["name"] for row in json_lines(ok(live.user("did", "content", dataset, "--json")))} == {
        "f1",
        "f2",
    }
    assert "f2" in ok(live.user("did", "files", "user.root:cont"))
    assert len(json_lines(ok(live.user("did", "files", "user.root:cont", "--json")))) == 2
    assert "ds2" in ok(live.user("did", "parents", "user.root:f1"))
    assert {row["name"] for row in json_lines(ok(live.user("did", "parents", "user.root:f1", "--json")))} == {
        "ds",
        "ds2",
    }
    assert "detached 1" in ok(live.user("did", "detach", "user.root:ds2", "user.root:f1"))
    assert json.loads(ok(live.user("did", "detach", "user.root:cont", dataset, "--json"))) == {"detached": 1}
    ok(live.user("did", "close", "user.root:ds2"))
    assert json.loads(ok(live.user("did", "show", "user.root:ds2", "--json")))["open"] is False
    assert json.loads(ok(live.user("did", "close", "user.root:cont", "--json")))["open"] is False


def test_metadata_and_search(live: Live, dataset: str) -> None:
    ok(live.user("meta", "set", dataset, "run_number", "7"))
    assert json.loads(ok(live.user("meta", "set", dataset, "project", "demo", "--json")))["value"] == "demo"
    assert ok(live.user("meta", "get", dataset, "project")).strip() == "demo"
    assert json.loads(ok(live.user("meta", "get", dataset, "run_number", "--json")))["value"] == 7
    assert "project" in ok(live.user("meta", "list", dataset))
    assert json.loads(ok(live.user("meta", "list", dataset, "--json")))["project"] == "demo"
    found = ok(live.user("did", "search", "user.root", "--filter", "run_number>3,type=DATASET"))
    assert "ds" in found
    rows = json_lines(ok(live.user("did", "search", "user.root", "--filter", "run_number>9", "--json")))
    assert rows == []


def test_replica_list(live: Live, dataset: str) -> None:
    table = ok(live.user("replica", "list", dataset))
    assert "SITE-A" in table and "AVAILABLE" in table and "file://" in table
    rows = json_lines(ok(live.user("replica", "list", dataset, "--json")))
    assert {row["name"] for row in rows} == {"f1", "f2"}
    assert all("SITE-A" in row["rses"] for row in rows)


def test_quota(live: Live, two_rses: tuple[str, str]) -> None:
    assert "SITE-A" in ok(live.user("quota"))
    document = json.loads(ok(live.user("quota", "--json")))
    assert {row["rse"] for row in document["local"]} >= {"SITE-A", "SITE-B"}


def test_rules(live: Live, dataset: str) -> None:
    live.require(RULES)
    rule_id = ok(live.user("rule", "add", dataset, "--rses", "SITE-A")).strip()
    assert json.loads(ok(live.user("rule", "show", rule_id, "--json")))["state"] == "OK"
    assert "OK" in ok(live.user("rule", "show", rule_id))
    assert rule_id in ok(live.user("rule", "list"))
    assert rule_id in {
        row["id"] for row in json_lines(ok(live.user("rule", "list", "--did", dataset, "--json")))
    }
    assert "OK" in ok(live.user("rule", "watch", rule_id, "--interval", "0.1"))
    assert json.loads(ok(live.user("rule", "watch", rule_id, "--json")).splitlines()[-1])["state"] == "OK"
    explained = json_lines(ok(live.user("rule", "explain", dataset, "--rses", "SITE-A|SITE-B", "--json")))
    assert [item["name"] for item in explained] == ["ds"] and explained[0]["groups"][0]["rses"]
    assert "user.root:ds" in ok(
        live.user("rule", "explain", dataset, "--rses", "SITE-A|SITE-B", "--copies", "2")
    )
    ok(live.user("rule", "update", rule_id, "--comment", "kept"))
    assert json.loads(ok(live.user("rule", "update", rule_id, "--locked", "--json")))["locked"] is True
    ok(live.user("rule", "update", rule_id, "--unlocked"))
    assert "expires within the hour" in ok(live.user("rule", "remove", rule_id))
    assert json.loads(ok(live.user("rule", "show", rule_id, "--json")))["expires_at"]  # soft, as in Rucio
    second = json.loads(
        ok(
            live.user(
                "rule",
                "add",
                dataset,
                "--rses",
                "SITE-A|SITE-B",
                "--copies",
                "1",
                "--lifetime",
                "60",
                "--json",
            )
        )
    )["rule_ids"][0]
    assert json.loads(ok(live.user("rule", "remove", second, "--json")))["removed"] is True


def test_publish(live: Live, dataset: str) -> None:
    live.require(PUBLISH)
    ok(live.user("did", "close", dataset))
    ok(live.user("meta", "set", dataset, "title", "A demo"))
    refused = live.user("publish", dataset)
    assert refused.exit_code == 1 and "needs metadata creator, publisher" in refused.stderr
    ok(live.user("meta", "set", dataset, "creator", "Doe, Jane"))
    ok(live.user("meta", "set", dataset, "publisher", "Example Lab"))
    lines = ok(live.user("publish", dataset)).splitlines()
    assert lines[1].startswith(live.url) and lines[0] in lines[1]
    before = live.client.json("GET", f"/dids/{dataset.replace(':', '/')}/publish")["datestamp"]
    ok(live.user("meta", "set", dataset, "title", "A second version"))
    updated = json.loads(ok(live.user("publish", "--update", dataset, "--json")))
    assert updated["pid"] == lines[0]
    assert datetime.strptime(updated["datestamp"], "%Y-%m-%dT%H:%M:%SZ") >= datetime.strptime(
        before, "%a, %d %b %Y %H:%M:%S UTC"
    )
    ok(live.user("unpublish", dataset))
    shared = json.loads(ok(live.user("publish", dataset, "--json")))
    assert set(shared) == {"pid", "landing_page"}
    assert json.loads(ok(live.user("unpublish", dataset, "--json")))["published"] is False


def test_errors_are_one_line(live: Live) -> None:
    result = live.user("did", "show", "user.root:nothing")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        ("Error: ScopeNotFound: ", "Error: DataIdentifierNotFound: ")
    )
    assert "Traceback" not in result.output
    usage = live.user("did", "show", "not-a-did")
    assert usage.exit_code == 2 and "SCOPE:NAME" in usage.stderr


def test_verbose_shows_the_traceback(live: Live) -> None:
    result = live.user("--verbose", "did", "show", "user.root:nothing")
    assert result.exit_code == 1
    assert result.exception is not None and type(result.exception).__name__ in (
        "ScopeNotFound",
        "DataIdentifierNotFound",
    )

"""Rucio's download options: --rses, --nrandom, --pfn, --no-subdir and --filter; bad filters refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.cli.conftest import Live

pytestmark = pytest.mark.integration


@pytest.fixture
def run_files(live: Live, two_rses: tuple[str, str], tmp_path: Path) -> dict[str, bytes]:
    """f0..f3 in dataset user.root:run on SITE-A, f0 also on SITE-B; f2 and f3 have run=7."""
    data = tmp_path / "data"
    data.mkdir()
    contents = {f"f{index}": bytes([index]) * (100 + index) for index in range(4)}
    for name, payload in contents.items():
        (data / name).write_bytes(payload)
    for rse, paths in (("SITE-A", [str(data)]), ("SITE-B", [str(data / "f0")])):
        result = live.user(
            "upload", "--rse", rse, "--scope", "user.root", "--dataset", "user.root:run", "--no-rule", *paths
        )
        assert result.exit_code == 0, result.output
    for name in ("f2", "f3"):
        live.client.set_metadata("user.root", name, "run", 7)
    return contents


def rows(result) -> list[dict]:  # type: ignore[no-untyped-def]
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_rses_nrandom_and_no_subdir(live: Live, run_files: dict[str, bytes], tmp_path: Path) -> None:
    only_b = rows(
        live.user("download", "--rses", "SITE-B", "--dir", str(tmp_path / "b"), "--json", "user.root:f0")
    )
    assert [(row["did"], row["rse"]) for row in only_b] == [("user.root:f0", "SITE-B")]
    partial = live.user(
        "download", "--rses", "SITE-B", "--dir", str(tmp_path / "b2"), "--json", "user.root:run"
    )
    assert partial.exit_code == 1 and "3 of 4 files failed" in partial.stderr
    statuses = {json.loads(line)["did"]: json.loads(line)["status"] for line in partial.stdout.splitlines()}
    assert statuses.pop("user.root:f0") == "ok" and all(
        "no available replica" in s for s in statuses.values()
    )

    flat = tmp_path / "flat"
    picked = rows(
        live.user("download", "--nrandom", "2", "--no-subdir", "--dir", str(flat), "--json", "user.root:run")
    )
    assert len(picked) == 2 and len({row["did"] for row in picked}) == 2
    assert sorted(path.name for path in flat.iterdir()) == sorted(row["did"].split(":")[1] for row in picked)
    for row in picked:
        assert Path(row["path"]).read_bytes() == run_files[row["did"].split(":")[1]]


def test_pfn_and_filter(live: Live, run_files: dict[str, bytes], tmp_path: Path) -> None:
    replica = next(iter(live.client.list_replicas([("user.root", "f0")])))
    pfn_b = replica["rses"]["SITE-B"][0]
    [row] = rows(
        live.user("download", "--pfn", pfn_b, "--dir", str(tmp_path / "p"), "--json", "user.root:f0")
    )
    assert row["pfn"] == pfn_b and row["rse"] == "SITE-B"
    wrong = live.user(
        "download", "--pfn", "file:///nowhere/f0", "--dir", str(tmp_path / "p2"), "user.root:f0"
    )
    assert wrong.exit_code == 1 and "is not a replica of user.root:f0" in wrong.stderr

    matched = rows(
        live.user("download", "--filter", "run=7", "--dir", str(tmp_path / "f"), "--json", "user.root:f*")
    )
    assert sorted(row["did"] for row in matched) == ["user.root:f2", "user.root:f3"]
    none = live.user("download", "--filter", "run=8", "--dir", str(tmp_path / "f2"), "user.root:f*")
    assert none.exit_code == 1 and "No DIDs match the filter" in none.stderr


def test_malformed_metadata_filter_is_refused(live: Live, run_files: dict[str, bytes]) -> None:
    for command in ("list", "search"):
        result = live.user("did", command, "user.root", "--filter", "run>>3")
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("Error: DIDFilterSyntaxError: Cannot parse filter condition 'run>>3'")
        assert result.stdout == ""


def test_list_dataset_replicas(live: Live, run_files: dict[str, bytes]) -> None:
    found = rows(live.user("replica", "list-dataset", "user.root:run", "--json"))
    total = sum(len(data) for data in run_files.values())
    assert [
        (
            row["rse"],
            row["available_length"],
            row["length"],
            row["available_bytes"],
            row["bytes"],
            row["state"],
        )
        for row in found
    ] == [
        ("SITE-A", 4, 4, total, total, "AVAILABLE"),
        ("SITE-B", 1, 4, len(run_files["f0"]), total, "INCOMPLETE"),
    ]


def test_replica_declare_bad(live: Live, run_files: dict[str, bytes]) -> None:
    result = live.user(
        "replica", "declare-bad", "--rse", "SITE-B", "user.root:f0", "--reason", "checksum mismatch"
    )
    assert result.exit_code == 0, result.output
    states = next(iter(live.client.list_replicas([("user.root", "f0")], all_states=True)))["states"]
    assert states["SITE-B"] == "BAD" and states["SITE-A"] == "AVAILABLE"

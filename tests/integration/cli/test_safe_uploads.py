"""Uploads that are safe to refuse, interrupt and repeat: checked on the storage itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datamgmt.client import Client
from tests.integration.cli.conftest import Live

pytestmark = pytest.mark.integration

MB = 1_000_000


def storage_files(prefix: Path) -> dict[str, int]:
    """Every file under an RSE's prefix, relative path -> size: temporaries and orphans included."""
    found = {}
    for path in prefix.rglob("*"):
        try:
            if path.is_file():
                found[str(path.relative_to(prefix))] = path.stat().st_size
        except FileNotFoundError:  # a temporary renamed by an upload still running
            continue
    return found


def make_files(directory: Path, count: int, size: int) -> dict[str, bytes]:
    directory.mkdir(parents=True)
    contents = {f"part{index:02d}": os.urandom(size) for index in range(count)}
    for name, data in contents.items():
        (directory / name).write_bytes(data)
    return contents


def test_quota_is_checked_before_a_byte_is_written(live: Live, alice: Client, tmp_path: Path) -> None:
    make_files(tmp_path / "data", 4, 2 * MB)
    result = live.user("upload", "--rse", "LOCAL-A", "--scope", "user.alice", str(tmp_path / "data"))
    assert result.exit_code == 1
    assert "InsufficientAccountLimit" in result.stderr
    assert "needs 8.0 MB on LOCAL-A, 5.0 MB left" in result.stderr
    assert storage_files(tmp_path / "local-a") == {}
    assert list(live.client.search_dids("user.alice", "type=file")) == []

    # Within the quota it goes through, as alice, with her rule.
    result = live.user(
        "upload", "--rse", "LOCAL-A", "--scope", "user.alice", "--json", str(tmp_path / "data" / "part00")
    )
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert row["status"] == "ok" and row["rule_id"]
    assert live.client.get_rule(row["rule_id"])["account"] == "alice"


def test_permission_refusal_names_the_usable_scopes(live: Live, alice: Client, tmp_path: Path) -> None:
    make_files(tmp_path / "data", 1, 1000)
    result = live.user(
        "upload", "--rse", "LOCAL-A", "--scope", "user.root", "--no-rule", str(tmp_path / "data")
    )
    assert result.exit_code == 1
    assert "AccessDenied" in result.stderr and "may upload to scopes: user.alice" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert storage_files(tmp_path / "local-a") == {}


def _start_upload(data: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "datamgmt.cli.user",
            "upload",
            "--rse",
            "SITE-A",
            "--scope",
            "user.root",
            "--dataset",
            "user.root:run",
            "--threads",
            "1",
            *extra,
            str(data),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_interruptible,
    )


def _interruptible() -> None:
    """Ctrl-C as a user's shell delivers it: a runner started in the background (``cmd &``)
    ignores SIGINT, and Python then never raises KeyboardInterrupt in the child."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for_final_files(prefix: Path, count: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        finals = [name for name in storage_files(prefix) if ".datamgmt-upload-" not in name]
        if len(finals) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"the upload ended or stalled before {count} files arrived: {process.communicate()}")


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_upload_reruns_to_completion(
    live: Live, two_rses: tuple[str, str], tmp_path: Path, stop: signal.Signals
) -> None:
    contents = make_files(tmp_path / "data", 24, 2 * MB)
    prefix = tmp_path / "storage-a"
    process = _start_upload(tmp_path / "data")
    _wait_for_final_files(prefix, 2, process)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    if stop == signal.SIGINT:
        assert "Interrupted:" in stderr and "run the same command again" in stderr
        assert len(stderr.strip().splitlines()) == 1, stderr
    arrived = {
        path: path.stat().st_mtime_ns
        for path in prefix.rglob("*")
        if path.is_file() and ".datamgmt-upload-" not in path.name
    }
    states = {
        replica["name"]: replica["states"]["SITE-A"]
        for replica in live.client.list_replicas([("user.root", name) for name in contents], all_states=True)
    }
    assert set(states) == set(contents)  # everything registered before the first byte
    assert "COPYING" in states.values()

    result = live.user(
        "upload",
        "--rse",
        "SITE-A",
        "--scope",
        "user.root",
        "--dataset",
        "user.root:run",
        "--json",
        str(tmp_path / "data"),
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == len(contents) and all(row["status"].startswith("ok") for row in rows)
    assert {row["status"] for row in rows} <= {"ok", "ok: already there", "ok: completed on storage"}
    # What had arrived before the stop is kept, not written again.
    assert {path: path.stat().st_mtime_ns for path in arrived} == arrived
    rule_id = rows[0]["rule_id"]

    replicas = list(live.client.list_replicas([("user.root", "run")], all_states=True))
    assert {replica["states"]["SITE-A"] for replica in replicas} == {"AVAILABLE"}
    # On storage: exactly one file per DID, whole, and nothing else (no temporary, no orphan).
    on_storage = storage_files(prefix)
    assert sum(on_storage.values()) == sum(len(data) for data in contents.values())
    assert len(on_storage) == len(contents)
    for replica in replicas:
        pfn = replica["rses"]["SITE-A"][0]
        assert Path(pfn.removeprefix("file://")).read_bytes() == contents[replica["name"]]

    # Idempotent: again, and with --overwrite, the same rule and no DuplicateRule.
    for extra in ((), ("--overwrite",)):
        again = live.user(
            "upload",
            "--rse",
            "SITE-A",
            "--scope",
            "user.root",
            "--dataset",
            "user.root:run",
            "--json",
            *extra,
            str(tmp_path / "data"),
        )
        assert again.exit_code == 0, again.output
        assert {json.loads(line)["rule_id"] for line in again.stdout.splitlines()} == {rule_id}
    assert storage_files(prefix) == on_storage
    assert len(list(live.client.list_did_rules("user.root", "run"))) == 1


def test_changed_file_under_a_known_name_is_refused(
    live: Live, two_rses: tuple[str, str], tmp_path: Path
) -> None:
    make_files(tmp_path / "data", 1, 1000)
    args = (
        "upload",
        "--rse",
        "SITE-A",
        "--scope",
        "user.root",
        "--no-rule",
        str(tmp_path / "data" / "part00"),
    )
    assert live.user(*args).exit_code == 0
    (tmp_path / "data" / "part00").write_bytes(os.urandom(1000))
    again = live.user(*args)
    assert again.exit_code == 1
    assert "FileConsistencyMismatch" in again.stdout and "choose another name" in again.stdout


def test_directories_recursive_and_nothing_matched(
    live: Live, two_rses: tuple[str, str], tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    make_files(tree / "run1", 2, 100)
    (tree / "run2").mkdir()
    (tree / "run2" / "extra").write_bytes(b"x" * 10)
    base = ("upload", "--rse", "SITE-A", "--scope", "user.root", "--no-rule")

    empty = live.user(*base, str(tree))
    assert empty.exit_code == 1
    assert "No files to upload" in empty.stderr and "--recursive" in empty.stderr and empty.stdout == ""

    result = live.user(*base, "--recursive", "--keep-paths", "--json", str(tree))
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(line)["did"] for line in result.stdout.splitlines()) == [
        "user.root:run1/part00",
        "user.root:run1/part01",
        "user.root:run2/extra",
    ]

    result = live.user(*base, "--recursive", "--json", str(tree / "run1"))
    assert {json.loads(line)["did"] for line in result.stdout.splitlines()} == {
        "user.root:part00",
        "user.root:part01",
    }


def test_guid_summary_and_register_after_upload(
    live: Live, two_rses: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_files(tmp_path / "data", 1, 100)
    monkeypatch.chdir(tmp_path)
    guid = "0123456789abcdef0123456789abcdef"
    result = live.user(
        "upload",
        "--rse",
        "SITE-B",
        "--scope",
        "user.root",
        "--guid",
        guid,
        "--summary",
        "--register-after-upload",
        str(tmp_path / "data" / "part00"),
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "datamgmt_upload.json").read_text())
    assert summary["user.root:part00"]["guid"] == guid and summary["user.root:part00"]["rse"] == "SITE-B"
    assert live.client.get_metadata("user.root", "part00").get("guid") == guid
    replica = next(iter(live.client.list_replicas([("user.root", "part00")])))
    assert replica["states"]["SITE-B"] == "AVAILABLE"


def test_interrupted_register_after_upload_leaves_no_dark_file(
    live: Live, two_rses: tuple[str, str], tmp_path: Path
) -> None:
    contents = make_files(tmp_path / "data", 24, 2 * MB)
    prefix = tmp_path / "storage-a"
    process = _start_upload(tmp_path / "data", "--register-after-upload", "--threads", "3")
    _wait_for_final_files(prefix, 2, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1 and "Interrupted:" in stderr and "were not written" in stderr
    on_storage = storage_files(prefix)
    assert not [name for name in on_storage if ".datamgmt-upload-" in name]  # temporaries cleaned
    registered = {row["name"] for row in live.client.search_dids("user.root", "type=file")}
    assert {
        Path(name).name for name in on_storage
    } == registered  # every file written is registered: none dark

    result = live.user(
        "upload",
        "--rse",
        "SITE-A",
        "--scope",
        "user.root",
        "--dataset",
        "user.root:run",
        "--register-after-upload",
        str(tmp_path / "data"),
    )
    assert result.exit_code == 0, result.output
    assert len(storage_files(prefix)) == len(contents)


def test_global_quota_is_checked_too(live: Live, alice: Client, tmp_path: Path) -> None:
    live.client.set_global_limit("alice", "type=USERDISK", 3 * MB)
    make_files(tmp_path / "data", 2, 2 * MB)
    result = live.user("upload", "--rse", "LOCAL-A", "--scope", "user.alice", str(tmp_path / "data"))
    assert result.exit_code == 1
    assert "needs 4.0 MB on type=USERDISK, 3.0 MB left" in result.stderr
    assert storage_files(tmp_path / "local-a") == {}

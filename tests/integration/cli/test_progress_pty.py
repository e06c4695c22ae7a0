"""Progress bars render on a terminal (a pty) and never when stdout is a pipe."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.cli.conftest import Live

pytestmark = pytest.mark.integration

BAR_MARKERS = ("total (3 files)", "B/s")


def run_on_pty(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run a command with its stdout and stderr on a pseudo-terminal; return status and what it drew."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    output = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            process.kill()
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    return process.wait(30), output.decode(errors="replace")


def command_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("NO_COLOR", "CI")}
    env.update({"TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"})
    return env


def test_download_bars_on_a_terminal_only(live: Live, two_rses: tuple[str, str], tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for index in range(3):
        (data / f"big{index}").write_bytes(os.urandom(3_000_000))
    cli = [sys.executable, "-m", "datamgmt.cli.user"]

    status, drawn = run_on_pty(
        [
            *cli,
            "upload",
            "--rse",
            "SITE-A",
            "--scope",
            "user.root",
            "--dataset",
            "user.root:big",
            "--no-rule",
            str(data),
        ],
        command_env(),
    )
    assert status == 0, drawn
    assert all(marker in drawn for marker in BAR_MARKERS), drawn
    assert "MB" in drawn and "\x1b[" in drawn

    status, drawn = run_on_pty(
        [*cli, "download", "--dir", str(tmp_path / "tty"), "user.root:big"], command_env()
    )
    assert status == 0, drawn
    assert all(marker in drawn for marker in BAR_MARKERS), drawn

    piped = subprocess.run(
        [*cli, "download", "--dir", str(tmp_path / "pipe"), "user.root:big"],
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert piped.returncode == 0, piped.stderr
    assert not any(marker in piped.stdout + piped.stderr for marker in BAR_MARKERS)
    assert "\x1b[" not in piped.stdout
    assert "user.root:big0" in piped.stdout


def test_errors_on_a_terminal_are_one_line(live: Live, two_rses: tuple[str, str], tmp_path: Path) -> None:
    """What a person sees for a refusal: one line, no traceback, no stray escape codes around it."""
    cli = [sys.executable, "-m", "datamgmt.cli.user"]
    status, drawn = run_on_pty([*cli, "did", "show", "user.root:nothing"], command_env())
    assert status == 1
    assert drawn.strip().splitlines() == [drawn.strip()] and drawn.startswith(
        "Error: DataIdentifierNotFound: "
    )

    status, drawn = run_on_pty([*cli, "did", "search", "user.root", "--filter", "run>>3"], command_env())
    assert status == 1 and drawn.strip().startswith(
        "Error: DIDFilterSyntaxError: Cannot parse filter condition"
    )
    assert len(drawn.strip().splitlines()) == 1

    env = {
        **command_env(),
        "DATAMGMT_CLIENT_URL": "http://127.0.0.1:9",
        "DATAMGMT_CLIENT_TOKEN_FILE": str(tmp_path / "none"),
    }
    status, drawn = run_on_pty([*cli, "whoami"], env)
    assert status == 1
    assert drawn.strip() == (
        "Error: ServiceUnavailable: Cannot reach http://127.0.0.1:9 (connection refused): is the "
        "server running there? Check [client] url in the client config or DATAMGMT_CLIENT_URL"
    )

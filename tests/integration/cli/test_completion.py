"""Shell completion of scopes, DIDs and RSE names from the server, cached briefly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.cli.conftest import Live

pytestmark = pytest.mark.integration

SCRIPT = "import sys; sys.argv[0] = 'datamgmt'; from datamgmt.cli.user import main; main()"


def complete(words: str, cache: Path, **extra: str) -> list[str]:
    """What bash completion offers for the last of ``words``, as the installed script computes it."""
    env = {
        **os.environ,
        "_DATAMGMT_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        "DATAMGMT_COMPLETION_CACHE": str(cache),
        **extra,
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return [line.split(",", 1)[1] for line in result.stdout.splitlines() if line]


def test_completes_scopes_dids_and_rses_from_the_server(
    live: Live, two_rses: tuple[str, str], tmp_path: Path
) -> None:
    for name in ("alpha1", "alpha2", "beta"):
        (tmp_path / name).write_bytes(name.encode())
    result = live.user(
        "upload",
        "--rse",
        "SITE-A",
        "--scope",
        "user.root",
        "--no-rule",
        *(str(tmp_path / name) for name in ("alpha1", "alpha2", "beta")),
    )
    assert result.exit_code == 0, result.output
    cache = tmp_path / "completion.json"

    assert complete("datamgmt did show user.r", cache) == ["user.root:"]
    assert complete("datamgmt did show user.root:al", cache) == ["user.root:alpha1", "user.root:alpha2"]
    assert complete("datamgmt upload --rse SITE-", cache) == ["SITE-A", "SITE-B"]

    live.client.add_rse("SITE-C")  # within the cache's minute the answer is the cached one
    assert complete("datamgmt upload --rse SITE-", cache) == ["SITE-A", "SITE-B"]
    cache.unlink()
    assert complete("datamgmt upload --rse SITE-", cache) == ["SITE-A", "SITE-B", "SITE-C"]

    # No server: nothing to offer, and nothing printed into the shell.
    assert (
        complete(
            "datamgmt did show user.root:al",
            tmp_path / "other.json",
            DATAMGMT_CLIENT_URL="http://127.0.0.1:9",
            DATAMGMT_CLIENT_TOKEN_FILE=str(tmp_path / "t"),
        )
        == []
    )

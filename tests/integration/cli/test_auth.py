"""The token cache: a 0600 file, reused across clients, and one new login after a 401."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from datamgmt.client import Client, ClientConfig
from datamgmt.exceptions import CannotAuthenticate
from tests.integration.cli.conftest import Live

pytestmark = pytest.mark.integration


def test_token_cached_0600_and_renewed_after_401(live: Live, tmp_path: Path) -> None:
    assert live.client.whoami()["account"] == "root"
    cache = tmp_path / "token"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    token = cache.read_text()

    second = Client(ClientConfig.load())
    assert second.whoami()["account"] == "root"
    assert cache.read_text() == token  # reused, no new login

    cache.write_text("root-root-unknown-0123456789abcdef0123456789abcdef")
    third = Client(ClientConfig.load())
    assert third.whoami()["account"] == "root"
    assert cache.read_text() not in (token, "root-root-unknown-0123456789abcdef0123456789abcdef")


def test_wrong_password_is_one_clear_error(
    live: Live, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATAMGMT_CLIENT_PASSWORD", "wrong-password")
    monkeypatch.setenv("DATAMGMT_CLIENT_TOKEN_FILE", str(tmp_path / "other-token"))
    with pytest.raises(CannotAuthenticate):
        Client(ClientConfig.load()).whoami()
    result = live.user("whoami")
    assert result.exit_code == 1 and result.stderr.startswith("Error: CannotAuthenticate: ")

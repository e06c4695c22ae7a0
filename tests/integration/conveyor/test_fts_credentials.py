"""FTS3 credentials come from ``[conveyor]``: a bearer token file reaches the server, a CA path
and certificate are handed to the client, and a missing file is a configuration error."""

from __future__ import annotations

import pytest

from datamgmt.config import reset_config
from datamgmt.daemons.conveyor import tools
from datamgmt.exceptions import ConfigurationError, TransferToolError
from tests.fts3_double import Fts3Double, Fts3DoubleServer

pytestmark = pytest.mark.integration


@pytest.fixture
def conveyor_options(monkeypatch):  # type: ignore[no-untyped-def]
    def configure(**options: str) -> None:
        for key, value in options.items():
            monkeypatch.setenv(f"DATAMGMT_CONVEYOR_{key.upper()}", value)
        reset_config()
        tools.reset()

    yield configure
    tools.reset()
    reset_config()


def test_bearer_token_from_config_reaches_fts(conveyor_options, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "token").write_text("secret-token\n")
    with Fts3DoubleServer(Fts3Double(require_token="secret-token")) as server:
        conveyor_options(fts_token_file="")
        with pytest.raises(TransferToolError):
            tools.fts_tool(server.url).query(["no-such-job"])
        conveyor_options(fts_token_file=str(tmp_path / "token"))
        assert tools.fts_tool(server.url).query(["no-such-job"]) is not None


def test_certificates_and_ca_path(conveyor_options, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for name in ("proxy", "cert", "key"):
        (tmp_path / name).write_text("PEM")
    (tmp_path / "ca").mkdir()
    conveyor_options(fts_proxy=str(tmp_path / "proxy"), fts_ca_path=str(tmp_path / "ca"))
    tool = tools.fts_tool("https://fts.example.org:8446")
    assert (tool.cert, tool.key, tool.ca_path, tool.token) == (
        str(tmp_path / "proxy"),
        str(tmp_path / "proxy"),
        str(tmp_path / "ca"),
        None,
    )
    conveyor_options(fts_proxy="", fts_cert=str(tmp_path / "cert"), fts_key=str(tmp_path / "key"))
    tool = tools.fts_tool("https://fts.example.org:8446")
    assert (tool.cert, tool.key) == (str(tmp_path / "cert"), str(tmp_path / "key"))
    conveyor_options(fts_key=str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="fts_key"):
        tools.fts_tool("https://fts.example.org:8446")
    conveyor_options(fts_key="", fts_proxy=str(tmp_path / "proxy"))
    with pytest.raises(ConfigurationError, match="not both"):
        tools.fts_tool("https://fts.example.org:8446")

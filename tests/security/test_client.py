"""The client's credentials: a token only for the server (and account) that issued it, no
credential headers across a redirect to another host, a warning for plain http, and no
password read from a file others can read.  Two small real HTTP servers record what they get."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from datamgmt.client.config import ClientConfig
from datamgmt.client.transport import TOKEN_HEADER, Transport
from datamgmt.exceptions import ConfigurationError


class Recorder(ThreadingHTTPServer):
    """Issues ``token-<name>`` on /auth/userpass, redirects /jump to ``redirect_to``, else answers {}."""

    def __init__(self, name: str, host: str) -> None:
        self.name, self.seen, self.redirect_to = name, [], ""
        super().__init__((host, 0), Handler)
        self.url = f"http://{host}:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.seen.append((self.path, dict(self.headers)))
        if self.path.startswith("/auth/userpass"):
            self.send_response(200)
            self.send_header(TOKEN_HEADER, f"token-{self.server.name}")
            self.send_header("Content-Length", "0")
        elif self.path == "/jump" and self.server.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.server.redirect_to + "/landed")
            self.send_header("Content-Length", "0")
        else:
            body = json.dumps({"path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def servers() -> Iterator[tuple[Recorder, Recorder]]:
    # Two host names for one machine: a redirect between them leaves the host.
    first, second = Recorder("one", "127.0.0.1"), Recorder("two", "localhost")
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (first, second)]
    for thread in threads:
        thread.start()
    yield first, second
    for server in (first, second):
        server.shutdown()
        server.server_close()


def _transport(url: str, token_file: Path) -> Transport:
    return Transport(
        ClientConfig(
            url=url, account="root", username="root", password="pw-secret-1", token_file=str(token_file)
        )
    )


def _tokens_seen(server: Recorder) -> list[str]:
    return [headers[TOKEN_HEADER] for _, headers in server.seen if TOKEN_HEADER in headers]


def test_a_cached_token_is_never_sent_to_another_server(
    servers: tuple[Recorder, Recorder], tmp_path: Path
) -> None:
    first, second = servers
    shared = tmp_path / "token"
    _transport(first.url, shared).json("GET", "/accounts/root")
    assert _tokens_seen(first) == ["token-one"]
    _transport(second.url, shared).json("GET", "/accounts/root")
    assert "token-one" not in _tokens_seen(second)
    assert _tokens_seen(second) == ["token-two"]


def test_default_token_caches_differ_by_server_and_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    paths = {
        ClientConfig(url=url, account=account).token_cache
        for url in ("https://a.example", "https://b.example")
        for account in ("root", "alice")
    }
    assert len(paths) == 4


def test_credentials_are_not_forwarded_across_a_redirect_to_another_host(
    servers: tuple[Recorder, Recorder], tmp_path: Path
) -> None:
    first, second = servers
    first.redirect_to = second.url
    _transport(first.url, tmp_path / "token").json("GET", "/jump")
    landed = [headers for path, headers in second.seen if path == "/landed"]
    assert landed, "the redirect was followed"
    assert not any(name in headers for headers in landed for name in (TOKEN_HEADER, "X-Rucio-Password"))


def test_plain_http_to_another_host_is_warned_about(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    with caplog.at_level(logging.WARNING):
        _transport("http://127.0.0.1:8080", tmp_path / "t")
        _transport("http://localhost:8080", tmp_path / "t")
        _transport("https://dm.example.org", tmp_path / "t")
        assert not caplog.records
        _transport("http://dm.example.org", tmp_path / "t")
    assert len(caplog.records) == 1 and "plain http" in caplog.records[0].getMessage()


def test_a_config_file_with_a_password_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "client.cfg"
    path.write_text("[client]\nurl = https://dm.example\naccount = alice\nusername = alice\npassword = pw\n")
    path.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        ClientConfig.load(path, environ={})
    path.chmod(0o600)
    assert ClientConfig.load(path, environ={}).password == "pw"
    path.write_text("[client]\nurl = https://dm.example\naccount = alice\n")
    path.chmod(0o644)
    assert ClientConfig.load(path, environ={}).password is None

"""A live API server on loopback over a fresh catalogue, and CLI runners configured for it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from datamgmt.client import Client, ClientConfig
from datamgmt.client.uploads import items_for, upload
from datamgmt.config import reset_config
from datamgmt.daemons.conveyor import tools
from tests.conftest import ROOT_PASSWORD
from tests.serving import serve
from tests.unit.conveyor.catalogue import tpc_domains


@dataclass
class Live:
    url: str
    client: Client
    routes: set[str]

    def require(self, route: str) -> None:
        """Skip the test while the API lacks ``route`` (being written next to this CLI)."""
        if route not in self.routes:
            pytest.skip(f"REST endpoint {route} is not in datamgmt.api yet")

    def user(self, *args: str) -> Result:
        from datamgmt.cli.user import cli

        return CliRunner().invoke(cli, list(args))

    def admin(self, *args: str) -> Result:
        from datamgmt.manage import build_cli

        return CliRunner().invoke(build_cli(), list(args))


@pytest.fixture
def live(db: str, root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    """The API (werkzeug, threaded, random port) and client settings pointing at it as root."""
    from datamgmt.api.app import create_app

    app = create_app(database_url=db)
    with serve(app) as url:
        settings = {
            "URL": url,
            "ACCOUNT": root,
            "USERNAME": "root",
            "PASSWORD": ROOT_PASSWORD,
            "TOKEN_FILE": str(tmp_path / "token"),
        }
        monkeypatch.setenv("DATAMGMT_CLIENT_CONFIG", str(tmp_path / "absent.cfg"))
        monkeypatch.setenv(
            "DATAMGMT_API_BASE_URL", url
        )  # landing pages on this server, as a deployment configures
        for option, value in settings.items():
            monkeypatch.setenv(f"DATAMGMT_CLIENT_{option}", value)
        yield Live(url, Client(ClientConfig.load()), {rule.rule for rule in app.url_map.iter_rules()})


def add_posix_rse(client: Client, name: str, prefix: Path) -> None:
    prefix.mkdir(parents=True, exist_ok=True)
    client.add_rse(name)
    priorities = {"read": 1, "write": 1, "delete": 1}
    client.add_protocol(
        name,
        {
            "scheme": "file",
            "hostname": "localhost",
            "port": 0,
            "prefix": str(prefix),
            "impl": "posix",
            "domains": {"lan": priorities, "wan": priorities},
        },
    )
    client.set_local_limit(client.account, name, -1)


@pytest.fixture
def two_rses(live: Live, tmp_path: Path) -> tuple[str, str]:
    """Scope ``user.root`` and two POSIX RSEs, ``SITE-A`` and ``SITE-B``, linked by distance 1."""
    live.client.add_scope("root", "user.root")
    add_posix_rse(live.client, "SITE-A", tmp_path / "storage-a")
    add_posix_rse(live.client, "SITE-B", tmp_path / "storage-b")
    live.client.set_distance("SITE-A", "SITE-B", 1)
    live.client.set_distance("SITE-B", "SITE-A", 1)
    return "SITE-A", "SITE-B"


@pytest.fixture
def alice(live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Client:
    """A USER account with scope user.alice and 5 MB on LOCAL-A, a user-writable POSIX RSE; the CLI acts as alice."""
    add_posix_rse(live.client, "LOCAL-A", tmp_path / "local-a")
    live.client.set_rse_attribute("LOCAL-A", "type", "USERDISK")
    live.client.add_scope("root", "user.root")
    live.client.add_account("alice", "USER", "alice@example.org")
    live.client.add_identity("alice", "alice", "userpass", "alice@example.org", password="alice-password-1")
    live.client.add_scope("alice", "user.alice")
    live.client.set_local_limit("alice", "LOCAL-A", 5_000_000)
    monkeypatch.setenv("DATAMGMT_CLIENT_ACCOUNT", "alice")
    monkeypatch.setenv("DATAMGMT_CLIENT_USERNAME", "alice")
    monkeypatch.setenv("DATAMGMT_CLIENT_PASSWORD", "alice-password-1")
    monkeypatch.setenv("DATAMGMT_CLIENT_TOKEN_FILE", str(tmp_path / "alice-token"))
    return Client(ClientConfig.load())


def add_tpc_rse(live: Live, name: str, prefix: Path) -> None:
    """A POSIX RSE that third-party copies can read from and write to."""
    prefix.mkdir(parents=True)
    live.client.add_rse(name)
    live.client.add_protocol(
        name,
        {
            "scheme": "file",
            "hostname": "localhost",
            "port": 0,
            "prefix": str(prefix),
            "impl": "posix",
            "domains": tpc_domains(),
        },
    )
    live.client.set_local_limit(live.client.account, name, -1)


@pytest.fixture
def local_conveyor(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The local transfer tool, one retry, no waiting between polls, submissions and repairs."""
    for key, value in {
        "transfertool": "local",
        "max_retries": "1",
        "poll_interval": "0",
        "submit_retry_seconds": "0",
    }.items():
        monkeypatch.setenv(f"DATAMGMT_CONVEYOR_{key.upper()}", value)
    monkeypatch.setenv("DATAMGMT_JUDGE_REPAIR_BACKOFF_SECONDS", "0")
    reset_config()
    yield
    tools.reset()
    reset_config()


@pytest.fixture
def broken(live: Live, tmp_path: Path, local_conveyor: None) -> tuple[str, Path]:
    """A file on GOOD; BROKEN's storage prefix lies under a regular file, so nothing can be written there."""
    live.client.add_scope("root", "user.root")
    add_tpc_rse(live, "GOOD", tmp_path / "good")
    add_tpc_rse(live, "BROKEN", tmp_path / "broken")
    (tmp_path / "broken").rmdir()
    (tmp_path / "broken").write_text("a file where the storage directory should be")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f1").write_bytes(b"x" * 1000)
    assert not upload(live.client, items_for([str(tmp_path / "data" / "f1")]), "user.root", "GOOD").failed
    return "user.root:f1", tmp_path

"""A live API server on a random loopback port, and the stock rucio CLI pointed at it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from datamgmt.api.app import create_app
from tests.conftest import ROOT_PASSWORD
from tests.rucio_cli.coverage import MARKER, command_of, is_legacy
from tests.serving import serve

BIN = Path(sys.executable).parent


@dataclass
class LiveServer:
    url: str


@pytest.fixture(scope="module")
def live_server(db_url: str) -> Iterator[LiveServer]:
    with serve(create_app(database_url=db_url)) as url:
        yield LiveServer(url)


@dataclass
class RucioCLI:
    """Runs the stock ``rucio`` / ``rucio-admin`` commands against the live server."""

    env: dict[str, str]
    cwd: Path
    #: The stock commands this test ran (``tests/rucio_cli/coverage.py``).
    ran: set[str] = field(default_factory=set)

    def run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = command_of(program, args) if program in ("rucio", "rucio-admin") else None
        if command:
            self.ran.add(command)
        result = subprocess.run(
            [str(BIN / program), *args],
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{program} {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("rucio", *args, check=check)

    def admin(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("rucio-admin", *args, check=check)


@pytest.fixture
def rucio(
    live_server: LiveServer, root: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[RucioCLI]:
    """The CLI, logged in as root through userpass, on a freshly bootstrapped catalogue.

    After the test it checks that the test ran exactly the stock commands that its
    ``rucio_commands`` marker declares, so the compatibility table cannot claim a command
    that no test runs.
    """
    if shutil.which("rucio", path=str(BIN)) is None:
        pytest.skip("rucio-clients is not installed (pip install 'rucio-clients==41.*')")
    config = tmp_path / "rucio.cfg"
    config.write_text(
        "[client]\n"
        f"rucio_host = {live_server.url}\n"
        f"auth_host = {live_server.url}\n"
        "auth_type = userpass\n"
        "username = root\n"
        f"password = {ROOT_PASSWORD}\n"
        "account = root\n"
        "request_retries = 2\n"
        f"auth_token_file_path = {tmp_path / 'token'}\n"
    )
    env = {**os.environ, "RUCIO_CONFIG": str(config), "HOME": str(tmp_path), "RUCIO_ACCOUNT": "root"}
    failed_before = request.session.testsfailed
    cli = RucioCLI(env=env, cwd=tmp_path)
    yield cli
    if request.session.testsfailed == failed_before:
        _check_declared(request, cli.ran)


def _check_declared(request: pytest.FixtureRequest, ran: set[str]) -> None:
    """The test ran every command its marker declares for this variant, and no other."""
    declared = {command for mark in request.node.iter_markers(MARKER) for command in mark.args}
    variant = getattr(request.node, "callspec", None)
    legacy = variant.params.get("legacy") if variant is not None else None
    expected = {command for command in declared if legacy is None or is_legacy(command) == legacy}
    assert ran <= declared, f"ran but not declared in @pytest.mark.{MARKER}: {sorted(ran - declared)}"
    assert expected <= ran, f"declared in @pytest.mark.{MARKER} but not run: {sorted(expected - ran)}"


def register_files(cli: RucioCLI, rse: str, scope: str, names: list[str], size: int = 1024) -> None:
    """Register file replicas through the stock client's Python API (``POST /replicas``)."""
    files = [{"scope": scope, "name": name, "bytes": size, "adler32": "0cc737eb"} for name in names]
    code = (
        "from rucio.client.replicaclient import ReplicaClient\n"
        f"ReplicaClient().add_replicas(rse={rse!r}, files={files!r})\n"
    )
    cli.run("python", "-c", code)


DOMAINS = (
    '{"wan": {"read": 1, "write": 1, "delete": 1, "third_party_copy_read": 1, "third_party_copy_write": 1},'
    ' "lan": {"read": 1, "write": 1, "delete": 1}}'
)


def add_file_rse(
    cli: RucioCLI,
    rse: str,
    prefix: Path,
    legacy: bool = False,
    impl: str = "rucio.rse.protocols.posix.Default",
) -> None:
    """An RSE with a ``file`` protocol below ``prefix``, created with the CLI."""
    protocol = [
        "--hostname",
        "localhost",
        "--scheme",
        "file",
        "--prefix",
        f"{prefix}/",
        "--impl",
        impl,
        "--domain-json",
        DOMAINS,
    ]
    if legacy:
        cli.admin("rse", "add", rse)
        cli.admin("rse", "add-protocol", *protocol, rse)
    else:
        cli("rse", "add", rse)
        cli("rse", "protocol", "add", rse, *protocol)

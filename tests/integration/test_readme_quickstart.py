"""The README quickstart, run literally: `make run` in one process group, the client block in bash.

Three settings keep it runnable anywhere: the port (a free one in $PORT, which both blocks read),
HOME (a temporary directory, so ~/.datamgmt/client.cfg is not the developer's) and the generated
root password's file (ROOT_PASSWORD_FILE, so the developer's var/root-password is untouched).  The
catalogue and the embedded storage go to a temporary directory through the documented
DATAMGMT_* environment overrides.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
CREATED_IN_ROOT = ("mydata", "downloads", "var/storage/ARCHIVE")

pytestmark = [pytest.mark.integration, pytest.mark.long]


def quickstart_block(marker: str) -> str:
    """The fenced bash block that follows ``<!-- quickstart:<marker> -->`` in the README."""
    match = re.search(rf"<!-- quickstart:{marker} -->\s*```bash\n(.*?)```", README.read_text(), re.S)
    assert match, f"README has no quickstart:{marker} block"
    return match.group(1)


def pid_of(output: str) -> str:
    return re.findall(r"21\.T99999/\S+", output)[0]


def token(url: str, environment: dict[str, str]) -> str:
    password = Path(environment["ROOT_PASSWORD_FILE"]).read_text().strip()
    answer = requests.get(
        f"{url}/auth/userpass",
        headers={
            "X-Rucio-Account": "root",
            "X-Rucio-Username": "root",
            "X-Rucio-AppID": "test",
            "X-Rucio-Password": password,
        },
        timeout=30,
    )
    return answer.headers["X-Rucio-Auth-Token"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_ping(url: str, server: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited during start-up"
        try:
            if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):  # a worker still booting on a busy machine
            pass
        time.sleep(0.5)
    raise AssertionError("the server did not answer /ping")


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    port = free_port()
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ)
    for key in [k for k in env if k.startswith("DATAMGMT_")]:
        del env[key]
    env.update(
        HOME=str(home),
        PORT=str(port),
        DATAMGMT_DATABASE_URL=f"sqlite:///{tmp_path / 'catalogue.db'}",
        DATAMGMT_STORAGE_ROOT=str(tmp_path / "storage"),
        DATAMGMT_API_WORKERS="1",
        ROOT_PASSWORD_FILE=str(tmp_path / "root-password"),
    )
    env.pop("ROOT_PASSWORD", None)
    yield env
    for relative in CREATED_IN_ROOT:
        shutil.rmtree(ROOT / relative, ignore_errors=True)


def test_readme_quickstart(environment: dict[str, str]) -> None:
    port = environment["PORT"]
    url = f"http://127.0.0.1:{port}"
    server_block = quickstart_block("server")
    # The port comes from $PORT, as `make run PORT=...` gives it; the password from a file of this test.
    client_block = quickstart_block("client").replace("var/root-password", environment["ROOT_PASSWORD_FILE"])
    server = subprocess.Popen(
        ["bash", "-ec", server_block],
        cwd=ROOT,
        env=environment,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_ping(url, server)
        result = subprocess.run(
            ["bash", "-ec", client_block],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "OK" in result.stdout
        assert "21.T99999/" in result.stdout  # the minted PID
        assert "<OAI-PMH" in result.stdout
        password_file = Path(environment["ROOT_PASSWORD_FILE"])
        assert password_file.stat().st_mode & 0o777 == 0o600
        assert password_file.read_text().strip() != "datamgmt-root"
        downloaded = sorted(p.name for p in (ROOT / "downloads").rglob("*.dat"))
        assert downloaded == ["run1.dat", "run2.dat", "run3.dat"]
        for name in downloaded:
            assert (ROOT / "downloads" / "user.root" / name).read_bytes() == (
                ROOT / "mydata" / name
            ).read_bytes()
        config = Path(environment["HOME"]) / ".datamgmt" / "client.cfg"
        written = config.read_text()
        assert f"url = {url}\n" in written
        again = subprocess.run(
            ["bash", "-ec", client_block],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert "keeping the existing ~/.datamgmt/client.cfg" in again.stdout and config.read_text() == written
        # The whole block runs again: every step accepts what the first run made, nothing is made twice.
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        assert "scope user.root of root already exists" in again.stdout
        assert pid_of(again.stdout) == pid_of(result.stdout)  # the share of the first run, not a new PID
        rules = requests.get(
            f"{url}/rules/",
            params={"scope": "user.root", "name": "runs"},
            headers={"X-Rucio-Auth-Token": token(url, environment)},
            timeout=30,
        )
        # The upload's rule and the tier=2 rule of the first run, each reused.
        assert sorted(json.loads(line)["rse_expression"] for line in rules.text.splitlines()) == [
            "LOCAL-A",
            "tier=2",
        ]
        assert sorted(p.name for p in (ROOT / "downloads").rglob("*.dat")) == downloaded
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            raise AssertionError("Ctrl-C did not stop the embedded service within 60 s") from None

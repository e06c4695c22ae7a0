"""The wheel works outside a source checkout: built from the sources, installed into a fresh
virtualenv in a temporary directory, and started from yet another directory, it migrates a
catalogue, serves ``/ping`` with its shipped gunicorn settings and prints its shipped
configuration template.

The fresh virtualenv holds only the wheel (``pip install --no-deps``); the dependencies are
lent from the running interpreter's site-packages through a ``.pth`` file (whose own ``.pth``
files, such as the checkout's editable hook, Python does not process), and ``pip check`` proves
that every dependency the wheel declares is satisfied there.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import requests

from tests.integration.test_readme_quickstart import free_port, wait_for_ping

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.integration


def run(*command: str | Path, **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{command}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ directory of a fresh virtualenv with only the wheel installed."""
    work = tmp_path_factory.mktemp("wheel")
    # Build from a copy, so the build leaves nothing in the checkout (and sees nothing stale there).
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("datamgmt", "etc"):
        shutil.copytree(
            ROOT / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work / "dist", source)
    [wheel] = (work / "dist").glob("datamgmt-*.whl")

    venv = work / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (site / "lent-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--no-deps", "-q", wheel)
    run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "check")
    return venv / "bin"


@pytest.fixture
def elsewhere(tmp_path: Path) -> dict[str, str]:
    """An environment with no trace of the checkout: no DATAMGMT_* or PYTHON* settings but a
    catalogue and storage of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAMGMT_", "PYTHON"))}
    env.update(
        DATAMGMT_DATABASE_URL=f"sqlite:///{tmp_path / 'catalogue.db'}",
        DATAMGMT_STORAGE_ROOT=str(tmp_path / "storage"),
        DATAMGMT_CONFIG=str(tmp_path / "no-such.cfg"),
    )
    return env


def test_the_installed_wheel_runs_outside_the_checkout(
    installed: Path, elsewhere: dict[str, str], tmp_path: Path
):
    where = run(
        installed / "python", "-c", "import datamgmt; print(datamgmt.__file__)", cwd=tmp_path, env=elsewhere
    )
    assert Path(where.stdout.strip()).is_relative_to(installed.parent), where.stdout

    template = run(installed / "datamgmt-admin", "config", "template", cwd=tmp_path, env=elsewhere)
    assert template.stdout == (ROOT / "etc" / "datamgmt.cfg.template").read_text()

    run(installed / "datamgmt-admin", "db", "upgrade", cwd=tmp_path, env=elsewhere)
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [installed / "datamgmt-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            cwd=tmp_path,
            env=elsewhere,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_ping(f"http://127.0.0.1:{port}", server)
        ping = requests.get(f"http://127.0.0.1:{port}/ping", timeout=10)
        assert ping.status_code == 200 and ping.json()["version"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    # The shipped settings were used: gunicorn's default would be the sync worker.
    assert "Using worker: datamgmt.api.gunicorn_worker.KeepServingWorker" in log.read_text()

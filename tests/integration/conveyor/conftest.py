"""Real storage for the conveyor's end-to-end tests: XRootD (root://, davs://) and moto (s3://).

The endpoints get their own base directory and ports, so this suite neither clashes with nor
stops the transfer-tool suite's servers (tests/integration/transfertool/conftest.py).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from datamgmt.transfertool.gfal2copy import Gfal2Options

SERVERS = Path(__file__).resolve().parents[2] / "servers"
STORAGE_ENV = {
    "STORAGE_BASE": os.environ.get("CONVEYOR_STORAGE_BASE", "/tmp/datamgmt-conveyor-storage"),
    "XROOTD_PORT": "24094",
    "XRDHTTP_PORT": "24095",
    "WEBDAV_PORT": "24080",
    "S3_PORT": "24900",
    "ENDPOINTS": "xrootd s3",  # wsgidav is not a conveyor destination here
}
S3_BUCKET = "datamgmt-test"
# A closed port: XrdCl would otherwise wait 120 s for it before giving up.
os.environ.setdefault("XRD_CONNECTIONWINDOW", "3")
os.environ.setdefault("XRD_CONNECTIONRETRY", "1")


@pytest.fixture(scope="session")
def storage() -> Iterator[dict[str, str]]:
    """The endpoints' URLs (``XROOTD_URL``, ``DAVS_URL``, ``S3_ENDPOINT_URL``…), started once."""
    env = dict(os.environ, **STORAGE_ENV)
    env.setdefault("STORAGE_VENV", "/tmp/datamgmt-storage-venv")
    subprocess.run(
        ["bash", str(SERVERS / "start-storage-endpoints.sh")], env=env, check=True, capture_output=True
    )
    out = subprocess.run(
        ["bash", "-c", f'set -a; . "{STORAGE_ENV["STORAGE_BASE"]}/endpoints.env"; env -0'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    urls = dict(item.split("=", 1) for item in out.split("\0") if "=" in item)
    os.environ["X509_CERT_DIR"] = urls["X509_CERT_DIR"]  # before any gfal2 context trusts davs://
    yield urls
    if os.environ.get("STORAGE_KEEP") != "1":
        subprocess.run(["bash", str(SERVERS / "stop-storage-endpoints.sh")], env=env, check=False)


@pytest.fixture(scope="session")
def gfal2_options() -> Gfal2Options:
    """moto's keys with path-style addressing, and streamed HTTP copies (moto refuses COPY)."""
    return {
        "HTTP PLUGIN": {"DEFAULT_COPY_MODE": "streamed"},
        "S3": {"ACCESS_KEY": "testing", "SECRET_KEY": "testing", "REGION": "us-east-1", "ALTERNATE": True},
    }

"""Start and stop the real storage endpoints (tests/servers/*.sh) from pytest fixtures.

Every suite gets its own base directory under /tmp (the unprivileged ``xrootd`` user must
reach it, so not pytest's 0700 ``tmp_path``) and free ports, so suites never stop each
other's servers.  ``STORAGE_VENV`` caches the servers' virtualenv between runs;
``STORAGE_KEEP=1`` leaves the servers running.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SERVERS = Path(__file__).resolve().parent
DEFAULT_STORAGE_VENV = "/tmp/datamgmt-storage-venv"
BUCKET = "datamgmt-test"


def fail_fast_on_closed_ports() -> None:
    """XrdCl waits 120 s for a closed port unless told otherwise, and it reads these settings
    once, when gfal2 first loads its plugins (for any scheme): so they must be set before any
    test of the session touches gfal2, not when the first storage endpoint starts."""
    os.environ.setdefault("XRD_CONNECTIONWINDOW", "3")
    os.environ.setdefault("XRD_CONNECTIONRETRY", "1")


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@contextmanager
def running_endpoints(prefix: str, endpoints: str = "xrootd s3") -> Iterator[dict[str, str]]:
    """Start ``endpoints`` on free loopback ports; yield the variables of their ``endpoints.env``."""
    base = tempfile.mkdtemp(prefix=f"datamgmt-{prefix}-", dir="/tmp")
    os.chmod(base, 0o755)
    xrootd_port, xrdhttp_port, webdav_port, s3_port = free_ports(4)
    env = dict(
        os.environ,
        STORAGE_BASE=base,
        STORAGE_VENV=os.environ.get("STORAGE_VENV", DEFAULT_STORAGE_VENV),
        ENDPOINTS=endpoints,
        XROOTD_PORT=str(xrootd_port),
        XRDHTTP_PORT=str(xrdhttp_port),
        WEBDAV_PORT=str(webdav_port),
        S3_PORT=str(s3_port),
        S3_BUCKETS=BUCKET,
    )
    subprocess.run(
        ["bash", str(SERVERS / "start-storage-endpoints.sh")], env=env, check=True, capture_output=True
    )
    try:
        out = subprocess.run(
            ["bash", "-c", f'set -a; . "{base}/endpoints.env"; env -0'],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        urls = dict(item.split("=", 1) for item in out.split("\0") if "=" in item)
        os.environ["X509_CERT_DIR"] = urls["X509_CERT_DIR"]  # before any gfal2 context trusts davs://
        yield urls
    finally:
        if os.environ.get("STORAGE_KEEP") != "1":
            subprocess.run(
                ["bash", str(SERVERS / "stop-storage-endpoints.sh"), "--purge"], env=env, check=False
            )

"""Fixtures for transfer-tool integration tests: the FTS3 double, real storage endpoints, files."""

from __future__ import annotations

import os
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fts3_double import Fts3Double, Fts3DoubleServer
from tests.servers.endpoints import BUCKET, running_endpoints

S3_BUCKET = BUCKET


@dataclass(frozen=True)
class SourceFile:
    path: Path
    data: bytes

    @property
    def url(self) -> str:
        return f"file://{self.path}"

    @property
    def adler32(self) -> str:
        return f"{zlib.adler32(self.data):08x}"


@pytest.fixture
def make_file(tmp_path: Path):
    """Write a random file under tmp_path and describe it (path, url, adler32)."""

    def make(size: int = 64 * 1024, name: str | None = None) -> SourceFile:
        path = tmp_path / "src" / (name or uuid.uuid4().hex)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(size)
        path.write_bytes(data)
        return SourceFile(path, data)

    return make


@pytest.fixture(scope="session")
def storage() -> Iterator[dict[str, str]]:
    """XRootD (root://, davs://), wsgidav (dav://) and moto (s3://) on 127.0.0.1, started once."""
    with running_endpoints("transfertool", "xrootd webdav s3") as urls:
        yield urls


@pytest.fixture(scope="session")
def gfal2_options() -> dict[str, dict[str, str | bool | int]]:
    """What every gfal2 context needs for the test endpoints: moto's S3 keys, streamed HTTP copies
    (moto and wsgidav refuse third-party COPY) and instant mock copies."""
    return {
        "HTTP PLUGIN": {"DEFAULT_COPY_MODE": "streamed"},
        "S3": {"ACCESS_KEY": "testing", "SECRET_KEY": "testing", "REGION": "us-east-1", "ALTERNATE": True},
        "MOCK PLUGIN": {"MIN_TRANSFER_TIME": 0, "MAX_TRANSFER_TIME": 0},
    }


@pytest.fixture
def fts3_server(gfal2_options) -> Iterator[Fts3DoubleServer]:
    """A fresh FTS3 double on a free port of 127.0.0.1 that copies for real."""
    with Fts3DoubleServer(Fts3Double(gfal2_options=gfal2_options)) as server:
        yield server


def storage_url(storage: dict[str, str], kind: str, name: str) -> str:
    """A fresh URL for ``name`` on one of the endpoints."""
    if kind == "s3":
        host = storage["S3_ENDPOINT_URL"].removeprefix("http://")
        return f"s3://{host}/{S3_BUCKET}/transfertool/{name}"
    base = {"root": storage["XROOTD_URL"], "davs": storage["DAVS_URL"]}[kind].rstrip("/")
    return f"{base}//transfertool/{name}"


@pytest.fixture
def wait_final():
    """Poll a tool until no queried transfer is SUBMITTED; statuses keyed by request (or external) id."""
    from datamgmt.transfertool.base import TransferState

    def wait(tool, external_ids, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while True:
            statuses = tool.query(external_ids)
            if all(s.state is not TransferState.SUBMITTED for s in statuses) or time.monotonic() > deadline:
                return {s.request_id or s.external_id: s for s in statuses}
            time.sleep(0.05)

    return wait

"""Real storage endpoints on 127.0.0.1 and one protocol per backend for the shared suite.

The session starts XRootD (root:// and davs:// through XrdHttp) and moto S3 with the project's
``tests/servers`` scripts, on free ports and under a fresh ``/tmp/datamgmt-rse-*`` directory (the
unprivileged ``xrootd`` user must reach it, so not pytest's 0700 ``tmp_path``). ``STORAGE_VENV``
caches the servers' virtualenv between runs; ``STORAGE_KEEP=1`` leaves the servers running.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from datamgmt.rse.checksum import adler32_of
from datamgmt.rse.protocols import Protocol, create_protocol
from tests.servers.endpoints import BUCKET, running_endpoints

DATA_BACKENDS = ("posix", "root", "davs", "s3")
BACKENDS = (*DATA_BACKENDS, "mock")


@pytest.fixture(scope="session")
def storage_endpoints() -> Iterator[dict[str, str]]:
    """Start XRootD and S3; yield the variables of the script's ``endpoints.env``."""
    with running_endpoints("rse") as urls:
        yield urls


@dataclass
class Backend:
    """One protocol under test plus what the tests need to know about its storage."""

    name: str
    protocol: Protocol
    #: Checksum algorithms the backend answers.
    checksums: tuple[str, ...]
    #: Where this machine sees the stored bytes (to damage them), or None.
    data_dir: Path | None = None

    @property
    def stores_data(self) -> bool:
        """gfal2's mock plugin stores nothing: its answers come from the URL's query."""
        return self.protocol.record.scheme != "mock"

    def unique_path(self) -> str:
        return f"tests/{uuid.uuid4().hex[:8]}/file.dat"

    def create(self, data: bytes, local_dir: Path) -> str:
        """A file holding ``data`` on this backend; its PFN."""
        pfn = self.protocol.path_to_pfn(self.unique_path())
        if not self.stores_data:
            return f"{pfn}?size={len(data)}&checksum={adler32_of([data])}"
        local = local_dir / uuid.uuid4().hex
        local.write_bytes(data)
        self.protocol.put(str(local), pfn)
        return pfn

    def missing(self) -> str:
        pfn = self.protocol.path_to_pfn(self.unique_path())
        return pfn if self.stores_data else pfn + "?errno=2"

    def disk_path(self, pfn: str) -> Path:
        assert self.data_dir is not None, f"{self.name} data is not on this machine"
        return self.data_dir / urlsplit(pfn).path.lstrip("/")


def _gfal_record(scheme: str, url: str, prefix: str) -> dict[str, object]:
    parts = urlsplit(url)
    return {
        "scheme": scheme,
        "hostname": parts.hostname,
        "port": parts.port or 0,
        "prefix": prefix,
        "impl": "rucio.rse.protocols.gfal.Default",
        "domains": {"wan": {"read": 1, "write": 1, "delete": 1}},
    }


@pytest.fixture(scope="session")
def backends(
    storage_endpoints: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Backend]:
    tls = {"x509_cert_dir": storage_endpoints["X509_CERT_DIR"]}
    xrootd_data = Path(storage_endpoints["XROOTD_DATA_DIR"])
    s3 = urlsplit(storage_endpoints["S3_ENDPOINT_URL"])
    s3_settings = {"access_key": "testing", "secret_key": "testing", "region": "us-east-1"}
    return {
        "posix": Backend(
            "posix",
            create_protocol(
                {"scheme": "file", "prefix": str(tmp_path_factory.mktemp("posix-rse")), "impl": "posix"}
            ),
            ("adler32", "md5"),
            data_dir=Path("/"),
        ),
        "root": Backend(
            "root",
            create_protocol(_gfal_record("root", storage_endpoints["XROOTD_URL"], "/rse-root"), tls),
            ("adler32",),
            data_dir=xrootd_data,
        ),
        "davs": Backend(
            "davs",
            create_protocol(_gfal_record("davs", storage_endpoints["DAVS_URL"], "/rse-davs"), tls),
            ("adler32",),
            data_dir=xrootd_data,
        ),
        "s3": Backend(
            "s3",
            create_protocol(
                {
                    "scheme": "s3",
                    "hostname": s3.hostname,
                    "port": s3.port,
                    "prefix": f"/{BUCKET}/rse-s3",
                    "impl": "s3",
                },
                s3_settings,
            ),
            ("adler32", "md5"),
        ),
        "mock": Backend(
            "mock",
            create_protocol(_gfal_record("mock", "mock://mock.example.org", "/rse-mock")),
            ("adler32",),
        ),
    }


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, backends: dict[str, Backend]) -> Backend:
    return backends[request.param]


@pytest.fixture(params=DATA_BACKENDS)
def data_backend(request: pytest.FixtureRequest, backends: dict[str, Backend]) -> Backend:
    """A backend that really stores bytes (every one but mock)."""
    return backends[request.param]

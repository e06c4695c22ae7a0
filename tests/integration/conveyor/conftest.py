"""Real storage for the conveyor's end-to-end tests: XRootD (root://, davs://) and moto (s3://).

The endpoints get their own base directory and free ports (tests/servers/endpoints.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from datamgmt.transfertool.gfal2copy import Gfal2Options
from tests.servers.endpoints import BUCKET, running_endpoints

S3_BUCKET = BUCKET


@pytest.fixture(scope="session")
def storage() -> Iterator[dict[str, str]]:
    """The endpoints' URLs (``XROOTD_URL``, ``DAVS_URL``, ``S3_ENDPOINT_URL``…), started once."""
    with running_endpoints("conveyor") as urls:
        yield urls


@pytest.fixture(scope="session")
def gfal2_options() -> Gfal2Options:
    """moto's keys with path-style addressing, and streamed HTTP copies (moto refuses COPY)."""
    return {
        "HTTP PLUGIN": {"DEFAULT_COPY_MODE": "streamed"},
        "S3": {"ACCESS_KEY": "testing", "SECRET_KEY": "testing", "REGION": "us-east-1", "ALTERNATE": True},
    }

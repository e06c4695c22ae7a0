"""One running service for the whole fault campaign (PostgreSQL only), shared by its test modules.

The cluster starts once for the package: starting gunicorn and 18 daemon processes costs more
than most trials.  Each test ends quiet and checked, so the next one starts from a clean state.
``FAULT_TRIALS`` sets the number of kill -9 trials (``make faults``: 100) and
``FAULT_OUTAGE_SECONDS`` the length of the FTS outage.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import clean_catalogue
from tests.faults.cluster import Cluster, running
from tests.faults.site import Site, populate

pytestmark = pytest.mark.integration


@pytest.fixture(scope="package")
def site(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Site:
    if not db_url.startswith("postgresql"):
        pytest.skip("the fault campaign needs PostgreSQL: set DATAMGMT_TEST_DB_URL")
    clean_catalogue(db_url)
    return populate(db_url, tmp_path_factory.mktemp("storage"))


@pytest.fixture(scope="package")
def cluster(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running(site.db_url, tmp_path_factory.mktemp("cluster")) as started:
        yield started


@pytest.fixture(autouse=True)
def steady(cluster: Cluster) -> Iterator[None]:
    """Each test starts with every daemon up and the FTS3 double behaving, whatever the last one did."""
    cluster.revive()
    cluster.fts_faults(fail_next=0, delay_next=0)
    cluster.mark_fts()
    yield
    cluster.fts_faults(fail_next=0, delay_next=0)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


def trials() -> int:
    return int(os.environ.get("FAULT_TRIALS", "8"))


def outage_seconds() -> float:
    return float(os.environ.get("FAULT_OUTAGE_SECONDS", "15"))

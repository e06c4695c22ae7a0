"""Free space as real storage endpoints report it (issue 15, defect 9): XRootD answers the gfal2
``spacetoken`` query, XrdHttp's WebDAV and S3 answer nothing, and the reaper writes what
it gets into the RSE's ``storage`` usage."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select

from datamgmt.core import rse
from datamgmt.core.db.models import RSEUsage
from datamgmt.daemons.reaper import Reaper
from tests.integration.storage.conftest import _gfal_record, backends, storage_endpoints  # noqa: F401

pytestmark = pytest.mark.integration

#: Other processes write to the same disk between two readings; they stay well below this.
SLACK = 64 << 20


def disk_free(path: Path) -> tuple[int, int]:
    info = os.statvfs(path)
    return info.f_blocks * info.f_frsize, info.f_bavail * info.f_frsize


def test_xrootd_reports_the_space_of_its_disk(backends, storage_endpoints):  # noqa: F811
    space = backends["root"].protocol.space()
    assert space is not None
    total, free = disk_free(Path(storage_endpoints["XROOTD_DATA_DIR"]))
    assert abs(space.total - total) < SLACK and abs(space.free - free) < SLACK


@pytest.mark.parametrize("name", ["davs", "s3"])
def test_endpoints_without_a_space_query_report_nothing(backends, name):  # noqa: F811
    assert backends[name].protocol.space() is None


def test_the_reaper_records_what_xrootd_reports(session, root, storage_endpoints):  # noqa: F811
    rse.add_rse(session, "XRD")
    rse.add_protocol(session, "XRD", _gfal_record("root", storage_endpoints["XROOTD_URL"], "/rse-space"))
    session.commit()
    Reaper("r").run_once(10)
    usage = session.scalars(select(RSEUsage).where(RSEUsage.source == "storage")).one()
    total, free = disk_free(Path(storage_endpoints["XROOTD_DATA_DIR"]))
    assert abs(usage.free - free) < SLACK and abs(usage.used - (total - free)) < SLACK

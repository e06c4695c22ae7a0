"""FTS goes away mid-run: first it answers 503 to everything, then it answers too late.

Nothing may be marked FAILED (or a rule STUCK) for the outage alone: submissions are held back and
tried again, polls that get no answer are asked again, and once FTS is back every rule completes,
the checker finds nothing and FTS has taken each transfer once: a submission whose answer came
too late, and that FTS did not know when asked, goes out again only under the same job id.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from datamgmt.core.db.constants import RequestState, RuleState
from datamgmt.core.db.models import Request, Rule
from datamgmt.core.db.session import transaction
from tests.faults.checks import finish
from tests.faults.cluster import SETTINGS
from tests.faults.conftest import outage_seconds
from tests.faults.workload import Workload

pytestmark = pytest.mark.long

#: Longer than the conveyor's FTS timeout, so a delayed answer is a timeout to it.
LATE_SECONDS = float(SETTINGS["DATAMGMT_CONVEYOR_FTS_TIMEOUT"]) + 3


def failures(db_url: str) -> tuple[int, int]:
    """(FAILED requests, STUCK rules)."""
    with transaction(db_url) as session:
        failed = session.scalar(select(func.count()).where(Request.state == RequestState.FAILED))
        stuck = session.scalar(select(func.count()).where(Rule.state == RuleState.STUCK))
    return failed or 0, stuck or 0


def test_outage_fails_nothing_and_everything_completes_after(cluster, site, workdir):
    before = failures(cluster.db_url)
    workload = Workload(site, cluster.api_url, workdir, seed=2).start()
    time.sleep(3)
    half = outage_seconds() / 2
    cluster.fts_faults(fail_next=10**9, status=503)
    time.sleep(half)
    cluster.fts_faults(fail_next=0, delay_next=10**9, seconds=LATE_SECONDS)
    time.sleep(half)
    cluster.fts_faults(delay_next=0)
    outcome = finish(cluster, workload)
    after = failures(cluster.db_url)
    outcome.report(
        "FTS outage",
        seconds_503=half,
        seconds_late=half,
        failed_stuck_before=before,
        failed_stuck_after=after,
    )
    outcome.assert_clean()
    assert after == before, "requests FAILED or rules STUCK because FTS was away"

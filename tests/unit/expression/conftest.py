"""Fixtures for the RSE expression tests: a fresh memory cache per test and the five-RSE catalogue."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from datamgmt.core import expression, rse
from datamgmt.core.cache import make_region

#: name -> (country, num, tag); T1 for the first three, T2 for the last two.
FIVE = {
    "R1": ("at", 10, "T1"),
    "R2": ("de", 20, "T1"),
    "R3": ("fr", 30, "T1"),
    "R4": ("uk", 40, "T2"),
    "R5": ("us", 50, "T2"),
}
TB = 10**12


@pytest.fixture(autouse=True)
def memory_cache() -> Iterator[None]:
    """Each test starts from an empty per-process cache, whatever ran before."""
    expression.set_cache_region(make_region("rse_expression", backend="memory", expiration_time=600))
    yield
    expression.set_cache_region(None)


@pytest.fixture
def five(session: Session) -> Session:
    """Five RSEs: country at/de/fr/uk/us, num 10..50, T1 on R1-R3, T2 on R4-R5.

    R4 is a TAPE, R3 volatile, R5 blocked for writing; R1 reports 5 TB free on ``storage``
    (and 9 TB on another source), R2 reports 3 TB free with a 1 TB MinFreeSpace limit.
    """
    for name, (country, num, tag) in FIVE.items():
        rse.add_rse(session, name, rse_type="TAPE" if name == "R4" else "DISK", volatile=name == "R3")
        rse.add_rse_attribute(session, name, "country", country)
        rse.add_rse_attribute(session, name, "num", str(num))
        rse.add_rse_attribute(session, name, tag, True)
    rse.add_rse_attribute(session, "R1", "label", "not-a-number")
    rse.add_rse_attribute(session, "R2", "label", "2.5")
    rse.add_rse_attribute(session, "R3", "flag", False)
    rse.update_rse(session, "R5", {"availability_write": False})
    rse.set_rse_usage(session, "R1", "storage", used=1, free=5 * TB)
    rse.set_rse_usage(session, "R1", "rucio", used=0, free=9 * TB)  # used: no replicas, as abacus counts
    rse.set_rse_usage(session, "R2", "srm", used=1, free=3 * TB)
    rse.set_rse_limits(session, "R2", "MinFreeSpace", 1 * TB)
    session.commit()
    return session

"""Subscription filters run on RE2: a catastrophic-backtracking pattern stays linear, and
patterns RE2 cannot run (backreferences, lookaround) are refused, never run on Python's ``re``."""

from __future__ import annotations

import time

import pytest

from datamgmt.core.db.constants import DIDType
from datamgmt.core.subscription import Candidate, parse_filter
from datamgmt.exceptions import InvalidObject


def test_a_pathological_pattern_on_a_long_value_returns_within_milliseconds() -> None:
    value = "a" * 4000 + "!"
    hostile = parse_filter({"pattern": "(a+)+$", "project": "(a|aa)+$"})
    candidate = Candidate("user.x", value, DIDType.DATASET, "alice", {"project": value})
    started = time.perf_counter()
    assert not hostile.matches(candidate)
    assert time.perf_counter() - started < 0.05


@pytest.mark.parametrize(
    "pattern", [r"(a)\1", r"a(?=b)", r"(?<!x)a"], ids=["backref", "lookahead", "lookbehind"]
)
def test_patterns_re2_cannot_run_are_refused(pattern: str) -> None:
    with pytest.raises(InvalidObject, match="RE2"):
        parse_filter({"pattern": pattern})

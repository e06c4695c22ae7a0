"""core/gc_pause.py: the collector is paused while a rule is applied, shared by threads, and
never re-enabled by us when it was disabled before."""

from __future__ import annotations

import gc
import threading

import pytest

from datamgmt.core import rule as rules
from datamgmt.core import rule_placement
from datamgmt.core.gc_pause import gc_paused


@pytest.fixture(autouse=True)
def collector_enabled():
    gc.enable()
    yield
    gc.enable()


def test_paused_inside_and_resumed_after():
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_last_of_several_threads_resumes_it():
    entered, release = threading.Barrier(2), threading.Event()

    def hold() -> None:
        with gc_paused():
            entered.wait(5)
            release.wait(5)

    other = threading.Thread(target=hold)
    other.start()
    with gc_paused():
        entered.wait(5)
    assert not gc.isenabled(), "the other thread still holds the pause"
    release.set()
    other.join(5)
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled():
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()


def test_a_rule_is_planned_with_the_collector_paused(cat, session, monkeypatch):
    seen: list[bool] = []
    plan_rule = rule_placement.plan_rule

    def recording(*args, **kwargs):
        seen.append(gc.isenabled())
        return plan_rule(*args, **kwargs)

    monkeypatch.setattr(rule_placement, "plan_rule", recording)
    dataset = cat.dataset(cat.files(3, on=("R3",)))
    rules.add_rule(session, [dataset], "jdoe", 1, "R1")
    session.commit()
    assert seen == [False]
    assert gc.isenabled()

"""Wake-ups (core/wakeup.py): a rule queued for the judge-injector is applied as soon as it is
committed, not when the injector's idle sleep runs out, and new transfers wake the submitter;
only a commit wakes; a lost listening connection is opened again.  On PostgreSQL through
NOTIFY, on SQLite through a wake file beside the catalogue."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text

from datamgmt.core import rule as rules
from datamgmt.core import wakeup
from datamgmt.core.db.constants import RuleState
from datamgmt.core.db.session import get_engine
from datamgmt.core.workqueue import INJECT_RULES, WorkQueue
from datamgmt.daemons.common import start_workers
from datamgmt.daemons.conveyor.submitter import Submitter
from datamgmt.daemons.judge.injector import Injector


def _listening(db: str, stop: threading.Event, queue: WorkQueue = INJECT_RULES) -> wakeup.Listener:
    listener = wakeup.listener_for(db, queue)
    assert listener is not None
    listener.start(stop)
    assert listener.listening.wait(10)
    return listener


def test_an_idle_injector_applies_a_new_rule_at_once(cat, session, db):
    dataset = cat.dataset(cat.files(3, on=("R3",)))
    session.commit()
    stop = threading.Event()
    # sleep_max 60 s, as in service: without a wake-up the rule would wait for that sleep.
    threads = start_workers(Injector, "def", db, stop, threads=2, batch=None, once=False, sleep_max=60)
    try:
        time.sleep(3.5)  # both workers found nothing: they slept 1 s, 2 s, and now sleep 4 s
        started = time.monotonic()
        (rule_id,) = rules.add_rule(session, [dataset], "jdoe", 1, "R1", asynchronous=True)
        session.commit()
        while cat.rule(rule_id).state == RuleState.INJECT and time.monotonic() - started < 10:
            session.rollback()
            time.sleep(0.02)
        waited = time.monotonic() - started
        assert cat.rule(rule_id).state == RuleState.REPLICATING
        assert waited < 1.0, f"applied after {waited:.2f} s"
    finally:
        session.rollback()
        stop.set()
        for thread in threads:
            thread.join(10)
    assert not any(thread.is_alive() for thread in threads), "workers must see the stop at once"


def test_only_a_commit_wakes(cat, session, db):
    dataset = cat.dataset(cat.files(1, on=("R3",)))
    session.commit()
    stop = threading.Event()
    wake = _listening(db, stop).wake
    try:
        rules.add_rule(session, [dataset], "jdoe", 1, "R1", asynchronous=True)
        session.rollback()
        assert not wake.wait(1.5)
        rules.add_rule(session, [dataset], "jdoe", 1, "R1", asynchronous=True)
        assert not wake.wait(0.5), "nothing is delivered before the commit"
        session.commit()
        assert wake.wait(5)
    finally:
        stop.set()


def test_an_approved_rule_wakes_the_injector(cat, session, db):
    dataset = cat.dataset(cat.files(1, on=("R3",)))
    (rule_id,) = rules.add_rule(session, [dataset], "jdoe", 1, "R1", ask_approval=True)
    session.commit()
    stop = threading.Event()
    wake = _listening(db, stop).wake
    try:
        assert not wake.wait(1.5), "a rule waiting for approval is no work for the injector"
        rules.approve_rule(session, rule_id)
        session.commit()
        assert wake.wait(5)
    finally:
        stop.set()


def test_new_transfers_wake_the_submitter(cat, session, db):
    dataset = cat.dataset(cat.files(2, on=("R3",)))
    session.commit()
    stop = threading.Event()
    wake = _listening(db, stop, Submitter.wakes_on).wake
    try:
        rules.add_rule(session, [dataset], "jdoe", 1, "R3")  # where the data is: no transfer
        session.commit()
        assert not wake.wait(1.5)
        rules.add_rule(session, [dataset], "jdoe", 1, "R1")
        session.commit()
        assert wake.wait(5)
    finally:
        stop.set()


def test_a_lost_listening_connection_is_opened_again(cat, session, db):
    if get_engine(db).dialect.name != "postgresql":
        pytest.skip("a PostgreSQL connection")
    dataset = cat.dataset(cat.files(1, on=("R3",)))
    session.commit()
    stop = threading.Event()
    listener = _listening(db, stop)
    try:
        session.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE query LIKE 'LISTEN %' AND datname = current_database()"
            )
        )
        session.commit()
        deadline = time.monotonic() + 10
        while listener.listening.is_set() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert listener.listening.wait(10), "the listener connects again"
        listener.wake.clear()
        rules.add_rule(session, [dataset], "jdoe", 1, "R1", asynchronous=True)
        session.commit()
        assert listener.wake.wait(5)
    finally:
        stop.set()


def test_a_catalogue_in_memory_has_nothing_to_listen_to():
    assert wakeup.listen("sqlite://", INJECT_RULES, threading.Event()) is None

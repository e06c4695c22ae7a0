"""The daemon loop, item transactions, heartbeats, signals, metrics and the launcher."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from datamgmt.core import heartbeat
from datamgmt.core.db.models import Heartbeat, Message
from datamgmt.core.db.types import utcnow
from datamgmt.daemons import launcher
from datamgmt.daemons.common import Daemon, work
from tests.unit.daemons.toy import ToyDaemon, add_work, done_counts, remaining_work

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def metric(name: str, daemon: str) -> float:
    return REGISTRY.get_sample_value(name, {"daemon": daemon}) or 0.0


def wait_for(session, predicate, timeout: float = 30) -> bool:
    """Poll ``predicate(session)`` with the session's transaction closed between polls (SQLite's writer lock)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate(session)
        session.rollback()
        if value or time.monotonic() > deadline:
            return bool(value)
        time.sleep(0.05)


def test_two_workers_process_every_item_exactly_once(session):
    add_work(session, 2000)
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=work, args=(ToyDaemon(f"w{i}"), stop), kwargs={"batch": 50, "once": True, "sleep_max": 1}
        )
        for i in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    counts = done_counts(session)
    assert remaining_work(session) == 0
    assert len(counts) == 2000 and set(counts.values()) == {1}


def test_a_failing_item_rolls_back_alone_and_keeps_its_lease(session):
    add_work(session, 3)
    add_work(session, 1, payload="fail")
    failed_before = metric("datamgmt_daemon_items_failed_total", "toy")
    done_before = metric("datamgmt_daemon_items_processed_total", "toy")
    daemon = ToyDaemon("w")
    assert daemon.run_once(10) == 3
    assert metric("datamgmt_daemon_items_failed_total", "toy") == failed_before + 1
    assert metric("datamgmt_daemon_items_processed_total", "toy") == done_before + 3
    (failed,) = session.execute(select(Message).where(Message.event_type == "work")).scalars()
    assert failed.claimed_by == "w" and failed.claimed_until > utcnow()
    assert str(failed.id) not in done_counts(session)  # its write was rolled back
    session.rollback()  # SQLite: every transaction holds the single writer lock
    assert daemon.run_once(10) == 0 and daemon.idle  # held by the lease: the back-off


def test_lost_lease_skips_the_item(session):
    add_work(session, 1)
    slow, fast = ToyDaemon("slow"), ToyDaemon("fast")
    rows = slow.queue.claim(session, "slow", 1, 60)
    session.execute(update(Message).values(claimed_until=utcnow() - timedelta(seconds=1)))
    session.commit()
    assert fast.run_once(1) == 1
    assert slow._process_item(slow.items(rows)[0]) is False
    assert set(done_counts(session).values()) == {1}


def test_heartbeats_live_expire_die(session):
    heartbeat.beat(session, "toy", "a", "host", 1)
    heartbeat.beat(session, "toy", "b", "host", 2)
    heartbeat.beat(session, "toy", "a", "host", 1)
    session.commit()
    assert heartbeat.live_workers(session, "toy", 60) == ["a", "b"]
    session.execute(
        update(Heartbeat).where(Heartbeat.worker_id == "b").values(updated_at=utcnow() - timedelta(hours=1))
    )
    assert heartbeat.live_workers(session, "toy", 60) == ["a"]
    assert heartbeat.expire(session, 60, "toy") == 1
    heartbeat.die(session, "toy", "a")
    assert heartbeat.live_workers(session, "toy", 3600) == []


def test_worker_loop_beats_and_stops_on_request(session):
    stop = threading.Event()
    daemon = ToyDaemon("looper")
    thread = threading.Thread(
        target=work, args=(daemon, stop), kwargs={"batch": 10, "once": False, "sleep_max": 0.2}
    )
    thread.start()
    assert wait_for(session, lambda s: "looper" in heartbeat.live_workers(s, "toy", 60))
    add_work(session, 5)  # picked up after the idle back-off
    assert wait_for(session, lambda s: remaining_work(s) == 0)
    stop.set()
    thread.join(10)
    assert not thread.is_alive() and remaining_work(session) == 0
    session.rollback()
    assert heartbeat.live_workers(session, "toy", 60) == []  # died gracefully


def _toy_process(db: str, *args: str, item_seconds: float = 0) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "DATAMGMT_DATABASE_URL": db,
        "TOY_ITEM_SECONDS": str(item_seconds),
        "PYTHONPATH": ROOT,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.unit.daemons.toy", *args],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_sigterm_finishes_the_current_batch_then_exits(db, session):
    add_work(session, 20)
    proc = _toy_process(db, "--batch", "10", item_seconds=0.1)
    assert wait_for(session, done_counts)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    session.rollback()
    done = sum(done_counts(session).values())
    assert done in (10, 20)  # whole batches only
    assert remaining_work(session) == 20 - done
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(
        line["msg"] == "stopping after the current batch" and line["signal"] == "SIGTERM" for line in lines
    )
    assert all({"ts", "level", "msg"} <= line.keys() for line in lines)


def test_launcher_lists_the_names(capsys):
    assert launcher.main(["--list"]) == 0
    names = capsys.readouterr().out.split()
    assert names[:4] == ["judge-evaluator", "judge-repairer", "judge-cleaner", "judge-injector"]
    assert {"reaper", "undertaker", "transmogrifier", "abacus", "hermes", "conveyor-poller"} <= set(names)


def test_every_listed_daemon_loads():
    assert all(issubclass(launcher.load(name), Daemon) for name in launcher.DAEMONS)


def test_launcher_rejects_unknown_names():
    with pytest.raises(SystemExit) as exc:
        launcher.main(["judge-nonsense"])
    assert exc.value.code == 2


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith("datamgmt_daemon_") and 'daemon="toy"' in line:
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_metrics_endpoint_counters_move(db, session):
    port = _free_port()
    proc = _toy_process(db, "--batch", "5", "--metrics-port", str(port), item_seconds=0.02)
    try:
        add_work(session, 10)
        key = 'datamgmt_daemon_items_processed_total{daemon="toy"}'
        deadline = time.monotonic() + 30
        seen: list[float] = []
        while time.monotonic() < deadline and (not seen or seen[-1] < 10):
            try:
                seen.append(_scrape(port).get(key, 0.0))
            except OSError:
                pass
            time.sleep(0.05)
        assert seen and seen[-1] == 10 and seen[0] < 10, seen
        add_work(session, 1, payload="fail")
        assert wait_for(
            session, lambda s: _scrape(port).get('datamgmt_daemon_items_failed_total{daemon="toy"}') == 1
        )
        samples = _scrape(port)
        assert samples['datamgmt_daemon_batch_duration_seconds_count{daemon="toy"}'] >= 2
        assert samples['datamgmt_daemon_last_success_timestamp_seconds{daemon="toy"}'] > time.time() - 60
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0

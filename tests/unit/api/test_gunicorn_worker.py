"""``KeepServingWorker`` (datamgmt/api/gunicorn_worker.py) over real sockets: a thread that keeps
serving its connection answers every kind of request on it as gthread does, gives a quiet
connection back to the poller, never makes another connection wait, busy-waits for the next
request only while no other thread of its worker is busy, and stops with the worker.

The server is gunicorn with one worker around a probe app (tests/servers/probe_wsgi.py), started
with a long linger so that a wrong wait shows as seconds, not milliseconds."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from datamgmt.api import gunicorn_worker
from datamgmt.core.db import busy_wait
from tests.servers.endpoints import free_ports

ROOT = Path(__file__).parents[3]


def start(threads: int, linger: float, busy_poll: float = 0.0) -> tuple[subprocess.Popen[bytes], int]:
    """A probe server, once it says it listens (without a connection of ours to find out)."""
    (port,) = free_ports(1)
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.servers.probe_wsgi", str(port), str(threads), str(linger)],
        cwd=ROOT,
        env={**os.environ, "DATAMGMT_API_BUSY_POLL_US": str(int(busy_poll * 1_000_000))},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 30)
    if ready and process.stdout.readline() == b"ready\n":
        return process, port
    process.kill()
    raise AssertionError("the probe server did not start")


@pytest.fixture
def server() -> Iterator[Callable[..., int]]:
    """Start a probe server with (threads, linger[, busy_poll]); each is stopped after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def run(threads: int, linger: float, busy_poll: float = 0.0) -> int:
        process, port = start(threads, linger, busy_poll)
        started.append(process)
        return port

    yield run
    for process in started:
        process.kill()
        process.wait(timeout=30)


class Connection:
    """One kept-alive HTTP/1.1 connection that reads answers by their Content-Length."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.pending = b""

    def send(self, *requests: bytes) -> None:
        self.sock.sendall(b"".join(requests))

    def answer(self) -> dict[str, float]:
        while b"\r\n\r\n" not in self.pending:
            self._read()
        head, _, self.pending = self.pending.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"Connection: keep-alive" in head, head
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        while len(self.pending) < length:
            self._read()
        body, self.pending = self.pending[:length], self.pending[length:]
        return json.loads(body)  # type: ignore[no-any-return]

    def call(self, request: bytes) -> dict[str, float]:
        self.send(request)
        return self.answer()

    def _read(self) -> None:
        data = self.sock.recv(65536)
        assert data, "the server closed the connection"
        self.pending += data


def get(path: str = "/") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: probe\r\n\r\n".encode()


def post(path: str, body: bytes) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: probe\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


def test_every_kind_of_request_on_a_kept_connection_is_answered_in_order(server) -> None:  # type: ignore[no-untyped-def]
    connection = Connection(server(4, 5.0))
    assert connection.call(get())["read"] == 0
    assert connection.call(post("/", b"x" * 5000))["read"] == 5000
    # A body the app leaves unread is drained, so the next request is parsed from its start.
    assert connection.call(post("/ignore-body", b"y" * 3000))["read"] == 0
    # Pipelined: the second request is already buffered when the first is answered.
    connection.send(post("/", b"abc"), get(), post("/", b"z" * 10))
    assert [connection.answer()["read"] for _ in range(3)] == [3, 0, 10]


def test_a_connection_quiet_longer_than_the_linger_is_served_from_the_poller(server) -> None:  # type: ignore[no-untyped-def]
    connection = Connection(server(2, 0.05))
    first = connection.call(get())
    time.sleep(0.3)
    assert connection.call(get())["read"] == 0
    assert first["read"] == 0


def test_a_lingering_thread_never_keeps_another_connection_waiting(server) -> None:  # type: ignore[no-untyped-def]
    """Two threads, three connections taking turns: a thread may wait on its connection only
    while the other is idle.  Were the rule broken, each turn would wait out the 2 s linger."""
    port = server(2, 2.0)
    connections = [Connection(port) for _ in range(3)]
    started = time.monotonic()
    for _ in range(4):
        for connection in connections:
            assert connection.call(get())["read"] == 0
    assert time.monotonic() - started < 2.0


def test_a_single_thread_does_not_linger(server) -> None:  # type: ignore[no-untyped-def]
    port = server(1, 2.0)
    first, second = Connection(port), Connection(port)
    started = time.monotonic()
    for _ in range(3):
        first.call(get())
        second.call(get())
    assert time.monotonic() - started < 2.0


def _cpu_while_waiting(connection: Connection, pause: float, meanwhile: Callable[[], None]) -> float:
    """CPU seconds the thread answering ``connection`` used between two calls ``pause`` apart."""
    first = connection.call(get())
    meanwhile()
    time.sleep(pause)
    second = connection.call(get())
    assert second["thread"] == first["thread"], "the same thread kept serving the connection"
    return second["cpu"] - first["cpu"]


def test_a_thread_alone_in_its_worker_busy_waits_for_the_next_request(server) -> None:  # type: ignore[no-untyped-def]
    """With ``[api] busy_poll_us`` of 0.4 s, a pause of 0.3 s is spent awake; with 0, asleep."""
    awake = _cpu_while_waiting(Connection(server(2, 5.0, 0.4)), 0.3, lambda: None)
    asleep = _cpu_while_waiting(Connection(server(2, 5.0, 0.0)), 0.3, lambda: None)
    assert awake > 0.15, awake
    assert asleep < 0.05, asleep


def test_a_thread_does_not_busy_wait_while_another_thread_of_its_worker_works(server) -> None:  # type: ignore[no-untyped-def]
    port = server(3, 5.0, 0.4)
    waiting, working = Connection(port), Connection(port)
    cpu = _cpu_while_waiting(waiting, 0.3, lambda: working.send(get("/sleep")))
    assert working.answer()["read"] == 0
    assert cpu < 0.05, cpu


def test_a_thread_alone_in_its_worker_may_busy_wait_for_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's process takes the worker as its policy: ``[api] db_busy_poll_us`` for a thread
    alone in the worker with the gate open, nothing while another thread works or the gate is shut.
    (Through a probe server this raced with the connection that saw the server start, in CI.)"""
    monkeypatch.setattr(gunicorn_worker.ThreadWorker, "init_process", lambda self: None)
    spare = [True]
    monkeypatch.setattr(gunicorn_worker, "cpu_to_spare", lambda own_load=0.0: spare[0])
    worker = object.__new__(gunicorn_worker.KeepServingWorker)
    worker._busy, worker._db_spin, worker._gate = 1, 0.0003, gunicorn_worker.SpinGate()
    worker.init_process()
    try:
        assert busy_wait.allowance() == pytest.approx(0.0003)
        worker._busy = 2
        assert busy_wait.allowance() == 0.0
        worker._busy, worker._gate, spare[0] = 1, gunicorn_worker.SpinGate(), False
        assert busy_wait.allowance() == 0.0
    finally:
        busy_wait.set_policy(None)


@pytest.mark.parametrize(
    ("load", "own", "spare"),
    [
        (0.3, 0.0, True),
        (1.9, 0.0, True),
        (2.0, 0.0, False),
        (7.5, 0.0, False),
        (2.6, 0.9, True),
        (2.6, 0.5, False),
    ],
)
def test_threads_busy_wait_only_while_the_host_has_a_cpu_to_spare(
    monkeypatch: pytest.MonkeyPatch, load: float, own: float, spare: bool
) -> None:
    """Two CPUs: a minute's load of 2 or more, less what the worker's own busy-waiting adds to
    it, means every CPU is taken, and busy-waiting would slow the host's other work."""
    monkeypatch.setattr(os, "getloadavg", lambda: (load, 0.0, 0.0))
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1})
    assert gunicorn_worker.cpu_to_spare(own) is spare


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_workers_own_busy_waiting_does_not_turn_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """One client calling back to back on two CPUs: client, database and the busy-waiting thread
    make a load of 2.4, of which the thread's waiting is 0.8 of the last second.  The gate stays
    open; were the load the thread's own doing only in part (0.2 s), it closes."""
    monkeypatch.setattr(os, "getloadavg", lambda: (2.4, 0.0, 0.0))
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1})
    clock = Clock()
    gate = gunicorn_worker.SpinGate(clock)
    assert gate.is_open() is False  # nothing spent yet: the whole load is the host's
    for spent, is_open in [(0.8, True), (0.2, False), (0.8, True)]:
        gate.spent(spent)
        clock.now += 0.5
        assert gate.is_open() is (not is_open)  # within the interval: the last answer holds
        clock.now += gunicorn_worker.LOAD_CHECK_INTERVAL - 0.5
        assert gate.is_open() is is_open


def test_threads_do_not_busy_wait_where_the_load_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    def unknown() -> tuple[float, float, float]:
        raise OSError("no load average here")

    monkeypatch.setattr(os, "getloadavg", unknown)
    assert gunicorn_worker.cpu_to_spare() is False


def test_a_stopping_worker_ends_its_lingering_threads() -> None:
    process, port = start(2, 0.5)
    try:
        connection = Connection(port)
        connection.call(get())
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert time.monotonic() - started < 8
    finally:
        process.kill()
        process.wait(timeout=30)

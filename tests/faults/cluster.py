"""The whole service as an operator runs it, on 127.0.0.1, for the fault campaign and the load bench.

One :class:`Cluster` is: the REST API under gunicorn (``datamgmt-server``), every daemon as its
own OS process (``datamgmt-daemon NAME``; two of each judge and conveyor daemon), and the FTS3
REST double as a process of its own, copying between posix RSEs under a work directory.  Every
process logs to a file under ``workdir/logs`` so a failed run can be read afterwards.

The cluster only starts and kills processes; the catalogue it runs on is made by the caller
(:func:`populate`), so the pytest fixtures and ``bench/load.py`` share it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

#: Daemons run twice (they race on the same queues); the others once.  hermes is left out: it
#: refuses to start without an AMQP broker, and its outbox is not part of these invariants.
DOUBLED = (
    "judge-evaluator",
    "judge-repairer",
    "judge-cleaner",
    "judge-injector",
    "conveyor-submitter",
    "conveyor-poller",
    "conveyor-finisher",
)
SINGLE = ("reaper", "undertaker", "abacus", "transmogrifier")

#: Short leases and heartbeats, so the work of a killed instance is retaken within a trial or two.
SETTINGS = {
    "DATAMGMT_DAEMONS_LEASE_SECONDS": "10",
    "DATAMGMT_DAEMONS_HEARTBEAT_TIMEOUT": "10",
    "DATAMGMT_DAEMONS_SLEEP_MAX": "2",
    "DATAMGMT_CONVEYOR_TRANSFERTOOL": "fts3",
    "DATAMGMT_CONVEYOR_POLL_INTERVAL": "1",
    "DATAMGMT_CONVEYOR_SUBMIT_RETRY_SECONDS": "2",
    "DATAMGMT_CONVEYOR_FTS_TIMEOUT": "5",
    "DATAMGMT_CONVEYOR_FILES_PER_JOB": "20",
    "DATAMGMT_REAPER_GREEDY": "true",
    "DATAMGMT_JUDGE_REPAIR_BACKOFF_SECONDS": "2",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, process: subprocess.Popen[bytes], what: str, seconds: float = 120) -> None:
    """Wait until ``url`` answers at all (any status), or fail if the process dies first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before it answered")
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer {url} within {seconds}s")


@dataclass
class Managed:
    """One OS process the cluster can start, SIGKILL and start again; its output goes to ``log``."""

    key: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    #: Stopped on purpose (not a death the campaign should report).
    stopped: bool = False

    def start(self) -> None:
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            self.argv, env=self.env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        handle.close()
        self.starts += 1
        self.stopped = False

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            self.process.wait()  # type: ignore[union-attr]

    def terminate(self) -> None:
        """Ask it to finish its batch and exit (SIGTERM to its group); :meth:`stop` waits for it."""
        if self.process is not None:
            self.stopped = True
            if self.alive():
                os.killpg(self.pid, signal.SIGTERM)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; nothing of its group outlives it."""
        if self.process is None:
            return
        self.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        try:  # gunicorn workers, copies in flight
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (gunicorn's workers), from /proc."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


@dataclass
class Cluster:
    """A running service over the catalogue ``db_url``; see the module docstring."""

    db_url: str
    workdir: Path
    api_workers: int = 2
    fts_workers: int = 4
    extra_env: dict[str, str] = field(default_factory=dict)
    #: Daemons started twice and once (the scale-out test runs every daemon twice).
    twice: tuple[str, ...] = DOUBLED
    once: tuple[str, ...] = SINGLE
    api_url: str = ""
    fts_url: str = ""
    api: Managed | None = None
    fts: Managed | None = None
    daemons: dict[str, Managed] = field(default_factory=dict)
    #: How many of the double's submission records earlier tests have seen.
    fts_seen: int = 0

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            **SETTINGS,
            **self.extra_env,
            "DATAMGMT_DATABASE_URL": self.db_url,
            "PYTHONPATH": str(ROOT),
            "DATAMGMT_CONVEYOR_FTS_HOST": self.fts_url,
        }
        env.pop("DATAMGMT_TEST_DB_URL", None)
        return env

    def _managed(self, key: str, argv: list[str]) -> Managed:
        logs = self.workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        return Managed(key, argv, self.env(), logs / f"{key}.log")

    # -- starting and stopping -------------------------------------------------------------
    def start(self) -> Cluster:
        fts_port, api_port = free_port(), free_port()
        self.fts_url, self.api_url = f"http://127.0.0.1:{fts_port}", f"http://127.0.0.1:{api_port}"
        self.fts = self._managed(
            "fts3-double",
            [
                sys.executable,
                "-m",
                "tests.fts3_double",
                "--port",
                str(fts_port),
                "--workers",
                str(self.fts_workers),
            ],
        )
        self.api = self._managed(
            "api",
            [
                str(BIN / "datamgmt-server"),
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
                "--workers",
                str(self.api_workers),
            ],
        )
        for name in self.twice:
            for i in (1, 2):
                self.daemons[f"{name}-{i}"] = self._managed(
                    f"{name}-{i}", [str(BIN / "datamgmt-daemon"), name]
                )
        for name in self.once:
            self.daemons[name] = self._managed(name, [str(BIN / "datamgmt-daemon"), name])
        self.fts.start()
        self.api.start()
        for daemon in self.daemons.values():
            daemon.start()
        wait_http(f"{self.fts_url}/_double/submissions", self.fts.process, "the FTS3 double")  # type: ignore[arg-type]
        wait_http(f"{self.api_url}/ping", self.api.process, "datamgmt-server")  # type: ignore[arg-type]
        return self

    def stop(self) -> None:
        """Stop everything at once: each process gets SIGTERM first, then is waited for in turn."""
        managed = [m for m in (*self.daemons.values(), self.api, self.fts) if m is not None]
        for process in managed:
            process.terminate()
        for process in managed:
            process.stop()

    def dead_daemons(self) -> list[str]:
        """Daemons that exited on their own (a daemon must survive faults without a restart)."""
        return [key for key, daemon in self.daemons.items() if not daemon.alive() and not daemon.stopped]

    # -- faults ----------------------------------------------------------------------------
    def api_workers_pids(self) -> list[int]:
        assert self.api is not None
        return children(self.api.pid)

    def kill_random(self, rng: random.Random, api_share: float = 0.25) -> str:
        """SIGKILL one random API worker (``api_share`` of the trials) or daemon instance and
        restart it; returns what was hit (``api-worker`` or the daemon's name).

        A daemon is started again at once, as systemd would; an API worker is left to gunicorn's
        master, which forks a new one itself.
        """
        workers = self.api_workers_pids()
        if workers and rng.random() < api_share:
            try:
                os.kill(rng.choice(workers), signal.SIGKILL)
            except ProcessLookupError:
                pass  # it was on its way out anyway
            return "api-worker"
        key = rng.choice(sorted(self.daemons))
        daemon = self.daemons[key]
        daemon.kill9()
        daemon.start()
        return daemon.argv[-1]

    def revive(self) -> None:
        """Start again any daemon that is not running (after a test that stopped or lost some)."""
        for daemon in self.daemons.values():
            if not daemon.alive():
                daemon.start()

    def wait_api_workers(self, seconds: float = 60) -> None:
        """Until gunicorn has all its workers again and /ping answers."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if len(self.api_workers_pids()) >= self.api_workers:
                try:
                    if requests.get(f"{self.api_url}/ping", timeout=5).ok:
                        return
                except requests.RequestException:
                    pass
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not bring its workers back")

    # -- the FTS3 double's own records -----------------------------------------------------
    def fts_faults(self, **body: Any) -> None:
        """Steer the double through its control surface (``/_double/faults``)."""
        requests.post(f"{self.fts_url}/_double/faults", data=json.dumps(body), timeout=10).raise_for_status()

    def fts_submissions(self) -> list[dict[str, Any]]:
        """Every file row the double took since :meth:`mark_fts` (its log spans the whole run)."""
        response = requests.get(f"{self.fts_url}/_double/submissions", timeout=30)
        response.raise_for_status()
        return response.json()[self.fts_seen :]

    def mark_fts(self) -> None:
        """Start a new test's view of the double's records here."""
        self.fts_seen += len(self.fts_submissions())


#: File states after which FTS copies nothing more: a later job for the request is a retry.
ENDED_WITHOUT_COPY = ("FAILED", "CANCELED")


def submitted_twice(submissions: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Request ids FTS accepted more than once, with the jobs that took each (the double logs
    every file row it ever took).

    A job that took a request after an earlier job's file for it had already failed or been
    canceled is the conveyor's retry of a real failure (a source reaped under a queued transfer,
    say), not a duplicate: it is counted only if an earlier file of the request was still live
    (or had copied) when it was accepted."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for row in submissions:
        rows.setdefault((row.get("file_metadata") or {}).get("request_id"), []).append(row)
    return {
        request_id: [row.get("job_id") for row in taken]
        for request_id, taken in rows.items()
        if any(not _retry_of(taken[:i], later) for i, later in enumerate(taken) if i)
    }


def _retry_of(earlier: list[dict[str, Any]], later: dict[str, Any]) -> bool:
    """Whether every earlier file had ended without a copy before ``later`` was accepted (the
    double's times have whole seconds, so the same second counts as before)."""
    return all(
        row.get("file_state") in ENDED_WITHOUT_COPY
        and row.get("finish_time") is not None
        and row["finish_time"] <= later.get("accepted_at", "")
        for row in earlier
    )


@contextmanager
def running(db_url: str, workdir: Path, **options: Any) -> Iterator[Cluster]:
    cluster = Cluster(db_url, workdir, **options)
    try:
        yield cluster.start()
    finally:
        cluster.stop()

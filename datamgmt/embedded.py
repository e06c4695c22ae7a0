"""The embedded service: API and daemons on one machine, with local storage.

``datamgmt-server --embedded`` (what ``make run`` starts) prepares two POSIX RSEs
under ``[storage] root`` on first start and supervises one child process that runs the
daemons as threads: the judge, the conveyor with the local transfer tool (which must
live in one process, because the submitter and the poller share its in-memory jobs),
the reaper, the undertaker, abacus, the transmogrifier and the necromancer.  hermes needs a broker and is left to
deployments that configure one.  If the child dies, it is restarted with a capped exponential
back-off (:class:`DaemonSupervisor`), and ``GET /health`` reports the daemons' heartbeats.
Ctrl-C or SIGTERM stops the API, then asks the daemons to finish their current batch, then exits.

``python -m datamgmt.embedded`` is that child process.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from datamgmt.config import get_config

#: The daemons an embedded service runs, in start order.
EMBEDDED_DAEMONS = (
    "judge-injector",
    "judge-evaluator",
    "judge-repairer",
    "judge-cleaner",
    "conveyor-submitter",
    "conveyor-poller",
    "conveyor-finisher",
    "reaper",
    "undertaker",
    "abacus",
    "transmogrifier",
    "necromancer",
)
LOCAL_RSES = ("LOCAL-A", "LOCAL-B")
STOP_GRACE_SECONDS = 30
#: Back-off before restarting a dead daemon child: doubles from the first delay up to the cap.
RESTART_FIRST_DELAY = 1.0
RESTART_MAX_DELAY = 60.0
#: A child that lived this long had started fine: the back-off of its successor starts over.
HEALTHY_RUN_SECONDS = 60.0

log = logging.getLogger("datamgmt.embedded")


def ensure_local_rses(storage_root: Path) -> None:
    """Create LOCAL-A and LOCAL-B with file:// protocols and a distance between them, once.

    They are scratch disks: every account may upload into its own scopes there."""
    from datamgmt.core import rse, rse_distance
    from datamgmt.core.db.session import transaction

    with transaction() as session:
        existing = {info.rse for info in rse.list_rses(session)}
        for name in LOCAL_RSES:
            if name in existing:
                continue
            directory = (storage_root / name).resolve()
            directory.mkdir(parents=True, exist_ok=True)
            rse.add_rse(session, name)
            rse.add_rse_attribute(session, name, "embedded", True)
            rse.add_rse_attribute(
                session, name, "type", "SCRATCHDISK"
            )  # users may upload (docs/permissions.md)
            rse.add_protocol(session, name, {"scheme": "file", "prefix": str(directory), "impl": "posix"})
            log.info("created RSE %s at %s", name, directory)
        first, second = LOCAL_RSES
        if not rse_distance.get_distances(session, first, second):
            rse_distance.set_distance(session, first, second, 1)
            rse_distance.set_distance(session, second, first, 1)


def run_daemons(stop: threading.Event) -> None:
    """Run one worker of each embedded daemon as a thread until ``stop`` is set."""
    from datamgmt.daemons.common import run_per_catalogue, start_workers
    from datamgmt.daemons.launcher import load, prepare_process

    sleep_max = min(get_config().get_float("daemons", "sleep_max"), 5.0)
    classes = [load(name) for name in EMBEDDED_DAEMONS]
    prepare_process(classes)

    def start(vo: str) -> list[threading.Thread]:
        return [
            thread
            for daemon_cls in classes
            for thread in start_workers(
                daemon_cls,
                vo,
                None,
                stop,
                threads=1,
                batch=daemon_cls.default_batch,
                once=False,
                sleep_max=sleep_max,
            )
        ]

    run_per_catalogue(start, None, stop, once=False)


class DaemonSupervisor:
    """Runs the daemon child process, restarts it whenever it dies, and stops it gracefully.

    A watcher thread waits on the child.  A death it did not ask for is logged at ERROR and
    answered by a new child after a back-off that doubles from ``first_delay`` up to
    ``max_delay``, so a child that cannot start (a broken configuration, a database that is
    down) is retried without a tight loop; a child that ran ``healthy_after`` seconds had
    started fine, and its successor's back-off starts over.
    """

    def __init__(
        self,
        command: list[str] | None = None,
        *,
        first_delay: float = RESTART_FIRST_DELAY,
        max_delay: float = RESTART_MAX_DELAY,
        healthy_after: float = HEALTHY_RUN_SECONDS,
    ) -> None:
        self.command = command or [sys.executable, "-m", "datamgmt.embedded"]
        self.first_delay, self.max_delay, self.healthy_after = first_delay, max_delay, healthy_after
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._started_at = 0.0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="daemon-supervisor", daemon=True)
        self._watcher.start()

    def _spawn(self) -> bool:
        """Start a child unless stopping; the lock keeps ``stop`` from missing a child just born."""
        with self._lock:
            if self._stopping.is_set():
                return False
            self.process = subprocess.Popen(self.command)
            self._started_at = time.monotonic()
        log.info("daemon child started (pid %s)", self.process.pid)
        return True

    def _watch(self) -> None:
        delay = self.first_delay
        while self.process is not None:
            status = self.process.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - self._started_at >= self.healthy_after:
                delay = self.first_delay
            log.error(
                "daemon child (pid %s) died (%s); restarting it in %.1fs",
                self.process.pid,
                _exit_reason(status),
                delay,
            )
            if self._stopping.wait(delay) or not self._spawn():
                return
            self.restarts += 1
            log.warning("daemon child restarted (pid %s, restart %d)", self.process.pid, self.restarts)
            delay = min(delay * 2, self.max_delay)

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                log.warning("daemons did not stop within %ss; killing them", STOP_GRACE_SECONDS)
                process.kill()
                process.wait()
        if self._watcher is not None:
            self._watcher.join(STOP_GRACE_SECONDS)


def _exit_reason(status: int) -> str:
    return f"killed by signal {-status}" if status < 0 else f"exit status {status}"


def main() -> None:
    """The daemon child process: run until SIGTERM/SIGINT, then finish the current batches."""
    from datamgmt.daemons import logs

    logs.configure()
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    run_daemons(stop)


if __name__ == "__main__":
    main()

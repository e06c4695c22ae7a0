"""The embedded service: API and daemons on one machine, with local storage.

``datamgmt-server --embedded`` (what ``make run`` starts) prepares two POSIX RSEs
under ``[storage] root`` on first start and supervises one child process that runs the
daemons as threads: the judge, the conveyor with the local transfer tool (which must
live in one process, because the submitter and the poller share its in-memory jobs),
the reaper, the undertaker, abacus and the transmogrifier.  hermes needs a broker and is left to
deployments that configure one.  Ctrl-C or SIGTERM stops the API, then asks
the daemons to finish their current batch, then exits.

``python -m datamgmt.embedded`` is that child process.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
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
)
LOCAL_RSES = ("LOCAL-A", "LOCAL-B")
STOP_GRACE_SECONDS = 30

log = logging.getLogger("datamgmt.embedded")


def ensure_local_rses(storage_root: Path) -> None:
    """Create LOCAL-A and LOCAL-B with file:// protocols and a distance between them, once."""
    from datamgmt.core import rse
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
            rse.add_protocol(session, name, {"scheme": "file", "prefix": str(directory), "impl": "posix"})
            log.info("created RSE %s at %s", name, directory)
        first, second = LOCAL_RSES
        if not rse.get_distances(session, first, second):
            rse.set_distance(session, first, second, 1)
            rse.set_distance(session, second, first, 1)


def run_daemons(stop: threading.Event) -> None:
    """Run one worker of each embedded daemon as a thread until ``stop`` is set."""
    from datamgmt.daemons.common import new_worker_id, work
    from datamgmt.daemons.launcher import NotBuiltYet, load

    sleep_max = min(get_config().get_float("daemons", "sleep_max"), 5.0)
    threads = []
    for index, name in enumerate(EMBEDDED_DAEMONS):
        try:
            daemon_cls = load(name)
        except NotBuiltYet:
            log.warning("daemon %s is not built in this release; the embedded service runs without it", name)
            continue
        worker = daemon_cls(new_worker_id(index))
        thread = threading.Thread(
            target=work,
            args=(worker, stop),
            kwargs={"batch": daemon_cls.default_batch, "once": False, "sleep_max": sleep_max},
            name=name,
        )
        thread.start()
        threads.append(thread)
    for thread in threads:
        while thread.is_alive():
            thread.join(0.5)


class DaemonSupervisor:
    """Starts the daemon child process and stops it gracefully."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "datamgmt.embedded"])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("daemons did not stop within %ss; killing them", STOP_GRACE_SECONDS)
            self.process.kill()
            self.process.wait()


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

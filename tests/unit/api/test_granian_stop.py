"""A granian worker stops on SIGTERM whichever of its threads the kernel hands the signal to.

granian's handler is a Python one, run only by the main thread, which sleeps on an event that
the handler sets.  Each check runs in a process of its own that stands for a worker: a Python
handler that sets the shutdown event, the main thread waiting on it, and another thread
(granian's Rust threads) to which the kernel must deliver SIGTERM because the main thread
blocks it.  The handler must run once: granian's blocks on a third run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[3]

WORKER = """
import signal, sys, threading, time
{install}
stopped = threading.Event()
handled = []
def stop(signum, frame):  # what granian's handler does: set the shutdown event
    handled.append(threading.current_thread().name)
    stopped.set()
for stop_signal in (signal.SIGTERM, signal.SIGINT):
    signal.signal(stop_signal, stop)
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGTERM}})
print("ready", flush=True)
woken = stopped.wait({wait})
time.sleep(0.5)  # a second run of the handler would come now
print(handled, flush=True)
sys.exit(0 if woken and handled == ["MainThread"] else 3)
"""
FORWARD = "from datamgmt.api.granian_server import forward_stop_signals; forward_stop_signals()"
#: What a worker runs before granian sets its signals: load_app builds the app and forwards.
LOAD_APP = "from datamgmt.api.granian_server import load_app; load_app('datamgmt')"


def _stop_worker(install: str, wait: float, tmp_path: Path) -> tuple[int, float]:
    """Start a stand-in worker, SIGTERM it once it is ready: its exit code and the seconds it took."""
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER.format(install=install, wait=wait)],
        cwd=ROOT,
        env={
            **os.environ,
            "DATAMGMT_DATABASE_URL": f"sqlite:///{tmp_path / 'catalogue.db'}",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        },
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    _until_the_main_thread_waits(process.pid)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=wait + 60), time.monotonic() - started


def _until_the_main_thread_waits(pid: int) -> None:
    """Until the stand-in's main thread sleeps in its wait.  A signal that arrives while it still
    runs Python code has its handler run at the main thread's next bytecode, whichever thread
    took it: that is not the hazard, and the check without forwarding would pass by chance."""
    time.sleep(0.2)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "S":
        assert time.monotonic() < deadline, "the stand-in worker never waited"
        time.sleep(0.01)


def test_a_sigterm_taken_by_another_thread_stops_the_worker(tmp_path: Path) -> None:
    code, seconds = _stop_worker(FORWARD, 30, tmp_path)
    assert code == 0 and seconds < 10


def test_without_forwarding_that_sigterm_is_never_handled(tmp_path: Path) -> None:
    """The hazard itself, so the test above cannot pass for another reason."""
    code, _seconds = _stop_worker("", 2, tmp_path)
    assert code == 3


def test_a_worker_forwards_once_its_app_is_loaded(tmp_path: Path) -> None:
    code, seconds = _stop_worker(LOAD_APP, 60, tmp_path)
    assert code == 0 and seconds < 10

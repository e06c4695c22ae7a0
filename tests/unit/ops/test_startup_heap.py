"""API workers and daemons leave what start-up built out of later garbage collections
(``datamgmt/startup.py``), and those that place rules have the solver's kernel loaded before
their first item: each checked in a process of its own, as it starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3]


def daemon_start(name: str) -> str:
    """``datamgmt-daemon NAME --run-once`` up to where its workers would start."""
    return (
        "import datamgmt.daemons.common as common; common.Runner.run = lambda self: None;"
        f" from datamgmt.daemons.launcher import main; main([{name!r}, '--run-once'])"
    )


#: Each start-up path, then the number of objects frozen, printed by the same process.
STARTS = {
    "granian worker": "from datamgmt.api.granian_server import load_app; load_app('datamgmt')",
    "gunicorn worker": ("import runpy; runpy.run_path('etc/gunicorn.conf.py')['post_worker_init'](None)"),
    "daemon": daemon_start("judge-evaluator"),
    "embedded daemons": (
        "import threading; import datamgmt.daemons.common as common;"
        " common.run_per_catalogue = lambda *args, **kwargs: None;"
        " from datamgmt.embedded import run_daemons; run_daemons(threading.Event())"
    ),
}


def started(code: str, tmp_path: Path) -> str:
    """What ``code`` prints in a process of its own on an empty catalogue."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            **os.environ,
            "DATAMGMT_DATABASE_URL": f"sqlite:///{tmp_path / 'catalogue.db'}",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.parametrize("start", sorted(STARTS))
def test_start_up_objects_are_frozen(start: str, tmp_path: Path) -> None:
    out = started(f"import gc; {STARTS[start]}; print(gc.get_freeze_count())", tmp_path)
    # Python's own start leaves tens of thousands of objects; a started worker over 100,000.
    assert int(out.split()[-1]) > 100_000, out


#: Daemons whose items place rules (the solver's kernel loaded as they start), and some that never do.
PLACING = {"judge-evaluator", "judge-injector", "judge-repairer", "transmogrifier"}


@pytest.mark.parametrize("name", [*sorted(PLACING), "reaper", "hermes", "embedded daemons"])
def test_daemons_that_place_rules_load_the_solver_as_they_start(name: str, tmp_path: Path) -> None:
    """Else the first rule a fresh judge-injector applied waited for numba and the kernel's cache
    to load: 1.62 s for 5,000 locks where a warm process took 0.86 s.  The embedded service's
    daemon process runs the judge among others."""
    start = STARTS[name] if name in STARTS else daemon_start(name)
    code = f"import sys; {start}; print('datamgmt.core.placement.kernels' in sys.modules, 'numba' in sys.modules)"
    loaded = name in PLACING or name == "embedded daemons"
    assert started(code, tmp_path).split()[-2:] == [str(loaded), str(loaded)]

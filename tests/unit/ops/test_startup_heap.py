"""API workers and daemons leave what start-up built out of later garbage collections
(``datamgmt/startup.py``): each checked in a process of its own, as it starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3]

#: Each start-up path, then the number of objects frozen, printed by the same process.
STARTS = {
    "granian worker": "from datamgmt.api.granian_server import load_app; load_app('datamgmt')",
    "gunicorn worker": ("import runpy; runpy.run_path('etc/gunicorn.conf.py')['post_worker_init'](None)"),
    "daemon": (
        "import datamgmt.daemons.common as common; common.Runner.run = lambda self: None;"
        " from datamgmt.daemons.launcher import main; main(['judge-evaluator', '--run-once'])"
    ),
}


@pytest.mark.parametrize("start", sorted(STARTS))
def test_start_up_objects_are_frozen(start: str, tmp_path: Path) -> None:
    code = f"import gc; {STARTS[start]}; print(gc.get_freeze_count())"
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
    # Python's own start leaves tens of thousands of objects; a started worker over 100,000.
    assert int(result.stdout.split()[-1]) > 100_000, result.stdout

"""``[api] server`` picks the HTTP server of ``datamgmt-server``; a name it does not know is a
one-line error before anything binds, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[3]


def test_an_unknown_server_is_refused_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bin" / "datamgmt-server"), "--port", "1"],
        env={**os.environ, "DATAMGMT_API_SERVER": "nginx", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr == "Error: [api] server must be one of gunicorn, granian, not 'nginx'\n"

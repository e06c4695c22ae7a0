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


def test_gunicorn_cmd_args_change_single_settings(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """docs/deployment.md promises it; the server read only its file and its own options before."""
    from datamgmt.api.server import GunicornServer

    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--threads 3 --worker-class gthread --bind 127.0.0.1:1")
    server = GunicornServer({"bind": "127.0.0.1:8081", "workers": 2})
    assert server.cfg.threads == 3
    assert server.cfg.worker_class_str == "gthread"
    assert server.cfg.timeout == 120  # the shipped file's, untouched
    assert server.cfg.bind == ["127.0.0.1:8081"]  # --host/--port and [api] win, as on gunicorn's command line
    assert server.cfg.workers == 2

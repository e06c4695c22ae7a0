"""Debian's Prometheus with the shipped scrape config and alert rules scrapes the API (gunicorn,
two workers) and a conveyor daemon: both ``up``, the API's counters agree across scrapes
whichever worker answers, the transfer counter moves after transfers, and every expression of
the Grafana dashboard evaluates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from datamgmt.daemons.conveyor.submitter import Submitter
from tests.fts3_double import Fts3Double, Fts3DoubleServer
from tests.integration.conveyor.test_conveyor_posix import conveyor_env, layout  # noqa: F401 (fixtures)
from tests.servers.endpoints import free_ports

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian's prometheus is not installed"),
]
ROOT = Path(__file__).parents[3]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback)
        return response.read().decode()


def _query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    answer = json.loads(_get(f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"))
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def _wait(what: str, check: Any, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
            if value:
                return value
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def _scrape_config(api: str, daemon: str, path: Path) -> Path:
    """The shipped config, pointed at this test's targets and scraped every second."""
    config = yaml.safe_load((ROOT / "etc" / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(ROOT / "etc" / "prometheus" / "alerts.yml")]
    targets = {"datamgmt-api": api, "datamgmt-daemons": daemon}
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
    path.write_text(yaml.safe_dump(config))
    return path


def _start(command: list[str], log: Path, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )


def _ping_count(metrics_text: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics_text.splitlines()
        if line.startswith("datamgmt_api_requests_total{") and 'endpoint="/ping"' in line
    )


def test_prometheus_scrapes_api_and_daemon(db, layout, conveyor_env, tmp_path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    api_port, daemon_port, prom_port = free_ports(3)
    processes: list[subprocess.Popen[bytes]] = []
    with Fts3DoubleServer(Fts3Double()) as fts:
        conveyor_env(transfertool="fts3", fts_host=fts.url)
        conveyor = {
            f"DATAMGMT_CONVEYOR_{k}": v
            for k, v in {"TRANSFERTOOL": "fts3", "FTS_HOST": fts.url, "POLL_INTERVAL": "0"}.items()
        }
        try:
            processes.append(
                _start(
                    [
                        sys.executable,
                        str(ROOT / "bin" / "datamgmt-server"),
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(api_port),
                        "--workers",
                        "2",
                    ],
                    tmp_path / "api.log",
                    PROMETHEUS_MULTIPROC_DIR="",
                    DATAMGMT_API_METRICS_PUBLIC="true",
                )
            )
            processes.append(
                _start(
                    [
                        sys.executable,
                        str(ROOT / "bin" / "datamgmt-daemon"),
                        "conveyor-poller",
                        "--metrics-port",
                        str(daemon_port),
                    ],
                    tmp_path / "poller.log",
                    **conveyor,
                )
            )
            config = _scrape_config(
                f"127.0.0.1:{api_port}", f"127.0.0.1:{daemon_port}", tmp_path / "prometheus.yml"
            )
            processes.append(
                _start(
                    [
                        "prometheus",
                        f"--config.file={config}",
                        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                        f"--web.listen-address=127.0.0.1:{prom_port}",
                    ],
                    tmp_path / "prometheus.log",
                )
            )
            prometheus = f"http://127.0.0.1:{prom_port}"
            up = _wait(
                "both targets up",
                lambda: (
                    {r["metric"]["job"]: r["value"][1] for r in _query(prometheus, "up")}
                    if len(_query(prometheus, "up == 1")) == 2
                    else None
                ),
            )
            assert up == {"datamgmt-api": "1", "datamgmt-daemons": "1"}

            # Both gunicorn workers answer; every scrape sees the sum of both.
            api = f"http://127.0.0.1:{api_port}"
            for _ in range(30):
                _get(f"{api}/ping")
            assert [_ping_count(_get(f"{api}/metrics")) for _ in range(5)] == [30.0] * 5

            assert _query(prometheus, 'sum(datamgmt_transfers_total{outcome="done"})') == []
            Submitter(db_url=db).run_once(1000)
            done = _wait(
                "the transfer counter",
                lambda: _query(
                    prometheus,
                    'sum(datamgmt_transfers_total{outcome="done", src_rse="SRC", dst_rse="DEST"}) >= 6',
                ),
            )
            assert float(done[0]["value"][1]) == 6
            assert _query(prometheus, 'datamgmt_catalogue_up{job="datamgmt-api"}')[0]["value"][1] == "1"
            assert _query(prometheus, 'datamgmt_queue_depth{queue="requests_submitted"}')

            dashboard = json.loads((ROOT / "etc" / "grafana" / "datamgmt.json").read_text())
            for panel in dashboard["panels"]:
                for target in panel["targets"]:
                    _query(prometheus, target["expr"])  # raises unless Prometheus parses and evaluates it
            rules = json.loads(_get(f"{prometheus}/api/v1/rules"))["data"]["groups"]
            assert {rule["name"] for group in rules for rule in group["rules"]} >= {
                "DatamgmtAPIDown",
                "DatamgmtDaemonDown",
                "DatamgmtQueueGrowing",
                "DatamgmtTransfersFailing",
                "DatamgmtRSENearlyFull",
            }
            assert all(rule["health"] != "err" for group in rules for rule in group["rules"])
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

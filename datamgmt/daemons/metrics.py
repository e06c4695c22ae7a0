"""Prometheus metrics shared by all daemons, labelled by daemon name (docs/metrics.md).

One set of metric families per process (the Prometheus client's registry is global), with a
``daemon`` label, so several daemons or threads in one process never register twice.  A
standalone daemon serves them with ``--metrics-port``; under ``datamgmt-server --embedded``
the daemon child writes them to the server's ``PROMETHEUS_MULTIPROC_DIR`` and the API's
``/metrics`` shows them with its own.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

ITEMS_PROCESSED = Counter("datamgmt_daemon_items_processed", "Work items a daemon completed", ["daemon"])
ITEMS_FAILED = Counter(
    "datamgmt_daemon_items_failed", "Work items whose processing raised and was rolled back", ["daemon"]
)
BATCH_SECONDS = Histogram(
    "datamgmt_daemon_batch_duration_seconds",
    "Wall time of one run_once batch",
    ["daemon"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300),
)
LAST_SUCCESS = Gauge(
    "datamgmt_daemon_last_success_timestamp_seconds",
    "Unix time of the last batch that raised nothing",
    ["daemon"],
    multiprocess_mode="max",
)
TRANSFERS = Counter(
    "datamgmt_transfers",
    "Transfer attempts whose outcome the conveyor applied",
    ["outcome", "src_rse", "dst_rse"],
)
TRANSFERRED_BYTES = Counter(
    "datamgmt_transferred_bytes", "Bytes of transfers that arrived", ["src_rse", "dst_rse"]
)

HERMES_DELIVERIES = Counter(
    "datamgmt_hermes_deliveries",
    "Messages hermes offered a delivery service, by outcome (delivered, refused, failed: not taken because the service failed)",
    ["service", "outcome"],
)


def serve(port: int, address: str) -> None:
    """Serve ``/metrics`` on ``address:port`` from a background thread."""
    start_http_server(port, addr=address)

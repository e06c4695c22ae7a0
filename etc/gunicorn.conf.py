"""gunicorn settings for ``datamgmt-server`` (override any of them with GUNICORN_CMD_ARGS).

Threads serve concurrent streams inside a worker; several workers use several cores.
datamgmt-server sets PROMETHEUS_MULTIPROC_DIR (a fresh directory) unless given one, so /metrics
aggregates every worker; child_exit drops a dead worker's live gauges.
"""

import os

from datamgmt.config import get_config

_config = get_config()

bind = f"{_config.get('api', 'host')}:{_config.get_int('api', 'port')}"
workers = _config.get_int("api", "workers")
# gthread, except that the thread that answered a kept-alive connection waits a moment for its
# next request and serves it itself (datamgmt/api/gunicorn_worker.py): about 0.15-0.25 ms less
# per small call. GUNICORN_CMD_ARGS="--worker-class gthread" restores gunicorn's own.
worker_class = "datamgmt.api.gunicorn_worker.KeepServingWorker"
threads = 8
# A worker that stops answering the master for this long is killed and replaced (a finite bound,
# never 0). gthread workers answer from their main loop, so a listing streamed for longer to a
# reader who keeps reading is not cut; slow readers are bounded by [api] max_streams instead,
# and an idle keep-alive connection is closed after `keepalive` seconds.
timeout = 120
graceful_timeout = 30
keepalive = 5
accesslog = "-"
# The same lines as gunicorn's own logger, for a fraction of its work per request.
logger_class = "datamgmt.api.access_log.AccessLogger"
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    from datamgmt.core.placement.solver import warm_up
    from datamgmt.startup import freeze_startup_objects

    warm_up()
    freeze_startup_objects()


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

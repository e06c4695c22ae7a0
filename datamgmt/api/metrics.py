"""Prometheus metrics of the API: request counts and latency by endpoint and status.

Endpoints are labelled by their route template (``/dids/<scope>/<name>``), never by
the raw path, so label cardinality stays bounded.  Under gunicorn with
``PROMETHEUS_MULTIPROC_DIR`` set (``datamgmt-server`` sets it by default), ``/metrics``
aggregates every worker, and the embedded daemons' metrics too; the catalogue's gauges
(:mod:`datamgmt.api.catalogue_metrics`) are added at scrape time.  Names: docs/metrics.md.
"""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from datamgmt.api.auth import public
from datamgmt.api.catalogue_metrics import CatalogueCollector
from datamgmt.api.context import authorize, unit_of_work

#: Methods labelled by name; any other token a client sends is labelled ``OTHER``.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def install_metrics(app: Flask) -> None:
    registry = CollectorRegistry()
    requests_total = Counter(
        "datamgmt_api_requests_total",
        "API requests answered",
        ["method", "endpoint", "status"],
        registry=registry,
    )
    latency = Histogram(
        "datamgmt_api_request_duration_seconds",
        "Time to produce the response (streams: until the first line)",
        ["method", "endpoint"],
        registry=registry,
    )
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        exposed = CollectorRegistry()
        MultiProcessCollector(exposed)  # type: ignore[no-untyped-call]  # prometheus_client leaves its __init__ unannotated
    else:
        exposed = registry
    exposed.register(CatalogueCollector(app.config["DATABASE_URL"]))

    @app.before_request
    def _start_clock() -> None:
        g.started = time.perf_counter()

    # The labelled children, looked up once per label set rather than through ``labels()``
    # (argument checks and a lock) on every request.
    children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    @app.after_request
    def _observe(response: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        # A client may send any method token: labels stay bounded.
        method = request.method if request.method in _METHODS else "OTHER"
        key = (method, endpoint, response.status_code)
        pair = children.get(key)
        if pair is None:
            pair = (
                requests_total.labels(method, endpoint, str(response.status_code)),
                latency.labels(method, endpoint),
            )
            children[key] = pair
        pair[0].inc()
        if "started" in g:
            pair[1].observe(time.perf_counter() - g.started)
        return response

    def metrics() -> Response:
        if not getattr(metrics, "public", False):
            with unit_of_work() as session:
                authorize(session, "read")
        return Response(generate_latest(exposed), content_type=CONTENT_TYPE_LATEST)

    # Request counts by route tell an outsider what the service is used for: open only by choice.
    app.add_url_rule(
        "/metrics",
        "metrics",
        public(metrics) if app.config.get("METRICS_PUBLIC") else metrics,
        methods=["GET"],
    )

"""The flood limit: a bounded request rate per source address for logins and unauthenticated requests.

The login lockout (api/login.py) counts failed logins; this counts *requests*, so a source that
hammers ``/auth/*`` or sends requests without credentials (public pages, guessed URLs, probes)
is answered 429 with ``Retry-After`` once it has sent ``[api] flood_max_requests`` of them within
``[api] flood_window`` seconds, until that window has passed.  The counts live in the catalogue
(core/throttle.py, under keys of their own), so every gunicorn worker and host shares them.

Requests that carry a token (or a bearer JWT) are not counted: authenticated work is bounded by
the permission policy and by gunicorn's workers, and counting it would cost every call a write.
Sources in ``[api] flood_exempt`` (loopback by default, where local tools and a reverse proxy
speak from) are never counted; behind a proxy, gunicorn's ``FORWARDED_ALLOW_IPS`` must be set so
that ``remote_addr`` is the client's address (docs/security.md).
"""

from __future__ import annotations

from flask import Flask, current_app, request

from datamgmt.api.context import unit_of_work
from datamgmt.config import Config
from datamgmt.core import throttle
from datamgmt.exceptions import TooManyRequests

_KEY = "datamgmt.flood"


def install_flood_limit(app: Flask, config: Config) -> None:
    """Read ``[api] flood_*`` and refuse floods before authentication runs."""
    maximum, window = config.get_int("api", "flood_max_requests"), config.get_int("api", "flood_window")
    if maximum <= 0:
        return
    exempt = frozenset(a.strip() for a in config.get("api", "flood_exempt").split(",") if a.strip())
    app.extensions[_KEY] = (throttle.Limit(maximum, window, window), exempt)
    app.before_request(_refuse_flood)


def _counted() -> bool:
    """Logins, and requests that present no credential, count against their source."""
    if request.path.startswith("/auth/"):
        return True
    return not (request.headers.get("X-Rucio-Auth-Token") or request.headers.get("Authorization"))


def _refuse_flood() -> None:
    limit, exempt = current_app.extensions[_KEY]
    source = request.remote_addr or ""
    if source in exempt or not _counted():
        return
    key = throttle.flood_key(source)
    with unit_of_work(read_only=True) as session:
        wait = throttle.retry_after(session, [key])
    if wait:
        raise TooManyRequests(wait)
    with unit_of_work(read_only=False) as session:
        throttle.record_event(session, {key: limit})

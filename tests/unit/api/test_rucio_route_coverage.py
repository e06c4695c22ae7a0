"""Every route of Rucio 41's REST API is served, excluded for a stated reason, or listed as pending.

The route list is Rucio's own (``tests/rucio_routes/generate.py`` reads it from Rucio's Flask
application).  ``pending.txt`` may only shrink: a route that starts being served must leave it.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from tests.rucio_routes.coverage import EXCLUDED, pending_routes, rucio_routes, served


def test_every_rucio_route_is_served_excluded_or_pending(app: Flask) -> None:
    routes = rucio_routes()
    missing = {r.line() for r in routes if (r.method, r.rule) not in EXCLUDED and not served(app, r)}
    pending = pending_routes()
    served_count = sum(1 for r in routes if served(app, r))
    print(
        f"\nRucio 41 routes served: {served_count}/{len(routes)}, excluded {len(EXCLUDED)}, pending {len(pending)}"
    )
    assert not missing - pending, f"neither served, excluded nor pending: {sorted(missing - pending)}"
    assert not pending - missing, f"served now, remove from pending.txt: {sorted(pending - missing)}"


def test_exclusions_are_rucio_routes_and_documented(app: Flask) -> None:
    known = {(r.method, r.rule) for r in rucio_routes()}
    assert set(EXCLUDED) <= known
    doc = (Path(__file__).parents[3] / "docs" / "rucio-compatibility.md").read_text()
    for method, rule in EXCLUDED:
        assert f"`{method} {rule}`" in doc

"""Which of Rucio 41's REST routes our application serves, judged by our own URL map.

A Rucio route counts as served when a request shaped like it (its variables filled with
sample values) matches one of our routes for the same method.  Matching real URLs instead of
comparing rule strings lets our paths name their variables differently (Rucio's
``<path:scope_name>`` is our ``<scope>/<path:name>``) and still be checked exactly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

HERE = Path(__file__).parent
ROUTES = HERE / "rucio41_routes.json"
PENDING = HERE / "pending.txt"

_HEX = "0123456789abcdef0123456789abcdef"
#: Sample values for Rucio's route variables; any other variable gets ``x<name>``.
SAMPLES = {
    "path:scope_name": "user.jdoe/file.1",
    "rule_id": _HEX,
    "subscription_id": _HEX,
    "exception_id": _HEX,
    "guid": _HEX,
    "port": "1094",
    "nbfiles": "2",
}

#: Routes of technology we do not run, each with the reason (also in docs/rucio-compatibility.md).
EXCLUDED = {
    ("POST", "/dirac/addfiles"): "DIRAC integration: we run no DIRAC",
    ("POST", "/dirac/addfiles/"): "DIRAC integration: we run no DIRAC",
    ("GET", "/auth/gss"): "Kerberos/GSS authentication: not supported",
    ("PUT", "/identities/<account>/gss"): "Kerberos/GSS identities: not supported",
    ("GET", "/auth/ssh"): "SSH-key authentication: not supported",
    ("GET", "/auth/ssh_challenge_token"): "SSH-key authentication: not supported",
}


@dataclass(frozen=True)
class Route:
    method: str
    rule: str

    def sample_url(self) -> str:
        return re.sub(
            r"<([^>]+)>", lambda m: SAMPLES.get(m.group(1), "x" + m.group(1).split(":")[-1]), self.rule
        )

    def line(self) -> str:
        return f"{self.method} {self.rule}"


def rucio_routes() -> list[Route]:
    document = json.loads(ROUTES.read_text())
    return [Route(entry["method"], entry["rule"]) for entry in document["routes"]]


def pending_routes() -> set[str]:
    """Routes in scope that we do not serve yet (``METHOD rule`` per line); the list only shrinks."""
    lines = (line.strip() for line in PENDING.read_text().splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def _static_segments(rule: str) -> set[str]:
    return {segment for segment in rule.split("/") if segment and "<" not in segment}


def served(app: Flask, route: Route) -> bool:
    """Whether a request shaped like ``route`` reaches one of our routes that means the same.

    A match on a rule of ours that takes one of Rucio's literal segments as a variable (our
    ``/requests/<request_id>`` catching Rucio's ``/requests/list``) does not count."""
    adapter = app.url_map.bind("localhost")
    try:
        rule, _ = adapter.match(route.sample_url(), method=route.method, return_rule=True)
    except RequestRedirect:
        return True  # served at the slash-normalised twin, as Rucio's clients follow it
    except (NotFound, MethodNotAllowed):
        return False
    return _static_segments(route.rule) <= _static_segments(rule.rule)

"""The API fixtures of tests/unit/api, shared so each security test can run alone (``make security``)."""

from __future__ import annotations

from tests.unit.api.conftest import app, client, root_headers

__all__ = ["app", "client", "root_headers"]

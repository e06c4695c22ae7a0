"""What operators ask the service: past transfer attempts, per-lock transfer state, the status page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from datamgmt.client.transport import Transport


class OperationsClient(Transport):
    def list_transfers(
        self, *, rule_id: str | None = None, rse: str | None = None, failed: bool = False, limit: int = 100
    ) -> Iterator[dict[str, Any]]:
        """Newest transfer attempts first (``GET /requests/history``, a datamgmt extension)."""
        params: dict[str, Any] = {"failed": str(failed), "limit": limit}
        params.update({k: v for k, v in (("rule_id", rule_id), ("rse", rse)) if v})
        return self.stream("GET", "/requests/history", params=params)

    def lock_transfers(self, rule_id: str) -> Iterator[dict[str, Any]]:
        """Per lock of a rule: attempts, last error, live request state and next retry."""
        return self.stream("GET", "/requests/locks", params={"rule_id": rule_id})

    def status(self) -> dict[str, Any]:
        """Daemons alive, queue depths, rules by state, stuck rules and RSE usage (``GET /status``)."""
        return self.json("GET", "/status")

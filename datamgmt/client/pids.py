"""Publishing: shares with minted PIDs, and the PID services that mint them.

These routes are datamgmt extensions (Rucio has no publishing):
``POST /dids/{scope}/{name}/publish`` → 201 ``{"pid", "landing_page"}``,
``DELETE /dids/{scope}/{name}/publish``, ``GET /pidservices/`` and ``POST /pidservices/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from datamgmt.client.transport import Transport, did_path


class PIDClient(Transport):
    def publish(self, scope: str, name: str, pid_service: str | None = None) -> dict[str, Any]:
        """Mint a PID for the DID (with the default service unless one is named)."""
        return self.json("POST", f"/dids/{did_path(scope, name)}/publish", body={"pid_service": pid_service})

    def get_share(self, scope: str, name: str) -> dict[str, Any]:
        """The DID's share (PUBLISHED or WITHDRAWN) with its PID and landing URL."""
        return self.json("GET", f"/dids/{did_path(scope, name)}/publish")

    def update_share(self, scope: str, name: str) -> dict[str, Any]:
        """Publish the DID's current files and metadata as a new version of its share (new datestamp)."""
        return self.json("PUT", f"/dids/{did_path(scope, name)}/publish")

    def unpublish(self, scope: str, name: str) -> None:
        """Withdraw the share; its PID keeps resolving to a tombstone."""
        self.call("DELETE", f"/dids/{did_path(scope, name)}/publish")

    def list_pid_services(self) -> Iterator[dict[str, Any]]:
        return self.stream("GET", "/pidservices/")

    def add_pid_service(
        self,
        name: str,
        service_type: str,
        prefix: str,
        *,
        endpoint: str | None = None,
        username: str | None = None,
        secret: str | None = None,
        is_default: bool = False,
    ) -> dict[str, Any]:
        """Returns the service as stored (without its secret)."""
        body = {
            "name": name,
            "type": service_type,
            "prefix": prefix,
            "endpoint": endpoint,
            "username": username,
            "secret": secret,
            "is_default": is_default,
        }
        return self.json("POST", "/pidservices/", body=body)

"""Metadata of DIDs: key-value pairs (DID columns and free keys)."""

from __future__ import annotations

from typing import Any

from datamgmt.client.transport import Transport, did_path, quoted


class MetadataClient(Transport):
    def get_metadata(self, scope: str, name: str, plugin: str = "ALL") -> dict[str, Any]:
        """All metadata by default; ``DID_COLUMN`` gives only the fixed columns, as Rucio."""
        return self.json("GET", f"/dids/{did_path(scope, name)}/meta", params={"plugin": plugin}) or {}

    def set_metadata(self, scope: str, name: str, key: str, value: Any, recursive: bool = False) -> None:
        body = {"value": value, "recursive": recursive}
        self.call("POST", f"/dids/{did_path(scope, name)}/meta/{quoted(key)}", body=body)

    def delete_metadata(self, scope: str, name: str, key: str) -> None:
        self.call("DELETE", f"/dids/{did_path(scope, name)}/meta", params={"key": key})

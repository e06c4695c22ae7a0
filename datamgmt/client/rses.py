"""RSEs: properties, attributes, protocols, limits, usage and distances."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from datamgmt.client.transport import Transport, quoted
from datamgmt.exceptions import Duplicate


class RSEClient(Transport):
    def add_rse(self, rse: str, **properties: Any) -> None:
        """Properties as Rucio's ``POST /rses/{rse}``: deterministic, volatile, rse_type, ..."""
        self.call("POST", f"/rses/{quoted(rse)}", body={"deterministic": True, **properties})

    def get_rse(self, rse: str) -> dict[str, Any]:
        """Properties and protocols."""
        return self.json("GET", f"/rses/{quoted(rse)}")

    def list_rses(self, expression: str | None = None) -> Iterator[dict[str, Any]]:
        """Full rows, or only ``{"rse": name}`` per match when an expression is given (as Rucio)."""
        return self.stream("GET", "/rses/", params={"expression": expression} if expression else None)

    def update_rse(self, rse: str, **properties: Any) -> None:
        self.call("PUT", f"/rses/{quoted(rse)}", body=properties)

    def set_availability(
        self, rse: str, *, read: bool | None = None, write: bool | None = None, delete: bool | None = None
    ) -> None:
        wanted = {"availability_read": read, "availability_write": write, "availability_delete": delete}
        self.update_rse(rse, **{key: value for key, value in wanted.items() if value is not None})

    def delete_rse(self, rse: str) -> None:
        self.call("DELETE", f"/rses/{quoted(rse)}")

    def list_rse_attributes(self, rse: str) -> dict[str, Any]:
        return self.json("GET", f"/rses/{quoted(rse)}/attr/") or {}

    def set_rse_attribute(self, rse: str, key: str, value: Any) -> None:
        """Rucio sends every value as a string."""
        self.call("POST", f"/rses/{quoted(rse)}/attr/{quoted(key)}", body={"value": str(value)})

    def delete_rse_attribute(self, rse: str, key: str) -> None:
        self.call("DELETE", f"/rses/{quoted(rse)}/attr/{quoted(key)}")

    def add_protocol(self, rse: str, record: Mapping[str, Any]) -> None:
        """``record``: scheme, hostname, port, prefix, impl and ``domains`` priorities."""
        self.call("POST", f"/rses/{quoted(rse)}/protocols/{quoted(record['scheme'])}", body=dict(record))

    def get_rse_limits(self, rse: str) -> dict[str, Any]:
        return self.json("GET", f"/rses/{quoted(rse)}/limits") or {}

    def set_rse_limit(self, rse: str, name: str, value: int) -> None:
        self.call("PUT", f"/rses/{quoted(rse)}/limits", body={"name": name, "value": value})

    def get_rse_usage(self, rse: str) -> Iterator[dict[str, Any]]:
        return self.stream("GET", f"/rses/{quoted(rse)}/usage")

    def get_distance(self, source: str, destination: str) -> list[dict[str, Any]]:
        return self.json("GET", f"/rses/{quoted(source)}/distances/{quoted(destination)}") or []

    def set_distance(self, source: str, destination: str, distance: int) -> None:
        """Add the link, or change it when it exists."""
        path = f"/rses/{quoted(source)}/distances/{quoted(destination)}"
        try:
            self.call("POST", path, body={"distance": distance})
        except Duplicate:
            self.call("PUT", path, body={"distance": distance})

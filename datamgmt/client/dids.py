"""Data identifiers: files, datasets and containers, their content and their search."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from datamgmt.client.filters import parse_filter
from datamgmt.client.transport import Transport, did_path, quoted


def did_list(dids: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"scope": scope, "name": name} for scope, name in dids]


class DIDClient(Transport):
    def add_did(
        self,
        scope: str,
        name: str,
        did_type: str,
        *,
        lifetime: int | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Create a DATASET or CONTAINER (files come to life through ``add_replicas``)."""
        body: dict[str, Any] = {"type": did_type.upper(), "statuses": {"monotonic": False}}
        if lifetime is not None:
            body["lifetime"] = lifetime
        if meta:
            body["meta"] = dict(meta)
        self.call("POST", f"/dids/{did_path(scope, name)}", body=body)

    def get_did(self, scope: str, name: str) -> dict[str, Any]:
        return self.json("GET", f"/dids/{did_path(scope, name)}", params={"dynamic_depth": "DATASET"})

    def search_dids(
        self, scope: str, filters: list[dict[str, str]] | str = "", *, name: str = "*", long: bool = True
    ) -> Iterator[dict[str, Any]]:
        """DIDs of ``scope`` matching the filter groups (or a ``--filter`` string).

        The filter travels as a Python literal, not JSON, as Rucio's server parses it.
        """
        groups = parse_filter(filters, name) if isinstance(filters, str) else filters
        if not any("type" in group for group in groups):
            groups = [{**group, "type": "all"} for group in groups]
        params = {"type": "collection", "filters": repr(groups), "long": str(long), "recursive": "False"}
        return self.stream("GET", f"/dids/{quoted(scope)}/dids/search", params=params)

    def attach(self, scope: str, name: str, dids: Iterable[tuple[str, str]]) -> None:
        self.call("POST", f"/dids/{did_path(scope, name)}/dids", body={"dids": did_list(dids)})

    def detach(self, scope: str, name: str, dids: Iterable[tuple[str, str]]) -> None:
        self.call("DELETE", f"/dids/{did_path(scope, name)}/dids", body={"dids": did_list(dids)})

    def set_status(self, scope: str, name: str, *, open: bool) -> None:  # noqa: A002 - Rucio's key
        self.call("PUT", f"/dids/{did_path(scope, name)}/status", body={"open": open})

    def close(self, scope: str, name: str) -> None:
        self.set_status(scope, name, open=False)

    def list_content(self, scope: str, name: str) -> Iterator[dict[str, Any]]:
        return self.stream("GET", f"/dids/{did_path(scope, name)}/dids")

    def list_files(self, scope: str, name: str) -> Iterator[dict[str, Any]]:
        return self.stream("GET", f"/dids/{did_path(scope, name)}/files")

    def list_parents(self, scope: str, name: str) -> Iterator[dict[str, Any]]:
        return self.stream("GET", f"/dids/{did_path(scope, name)}/parents")

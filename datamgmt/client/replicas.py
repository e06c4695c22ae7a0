"""File replicas: registration, state and listing with PFNs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from datamgmt.client.dids import did_list
from datamgmt.client.transport import Transport


class ReplicaClient(Transport):
    def add_replicas(
        self, rse: str, files: Iterable[Mapping[str, Any]], ignore_availability: bool = True
    ) -> None:
        """Register files (scope, name, bytes, adler32, md5, meta, state) on ``rse``."""
        body = {
            "rse": rse,
            "files": [dict(item) for item in files],
            "ignore_availability": ignore_availability,
        }
        self.call("POST", "/replicas", body=body)

    def update_replicas_state(self, rse: str, files: Iterable[Mapping[str, Any]]) -> None:
        """Each file carries ``scope``, ``name`` and the new ``state`` (``A``, ``U``, ...)."""
        self.call("PUT", "/replicas", body={"rse": rse, "files": [dict(item) for item in files]})

    def set_tombstone(self, rse: str, dids: Iterable[tuple[str, str]]) -> None:
        """Have the reaper delete these replicas on ``rse``; refused as a whole when a rule locks one."""
        replicas = [{"rse": rse, "scope": scope, "name": name} for scope, name in dids]
        self.call("POST", "/replicas/tombstone", body={"replicas": replicas})

    def list_replicas(
        self,
        dids: Iterable[tuple[str, str]],
        *,
        schemes: list[str] | None = None,
        rse_expression: str | None = None,
        all_states: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """One line per file, with its PFNs keyed by URL and by RSE, and the replica states."""
        body: dict[str, Any] = {
            "dids": did_list(dids),
            "domain": None,
            "ignore_availability": True,
            "all_states": all_states,
            "resolve_archives": False,
            "resolve_parents": False,
        }
        if schemes:
            body["schemes"] = schemes
        if rse_expression:
            body["rse_expression"] = rse_expression
        return self.stream("POST", "/replicas/list", body=body)

    def declare_bad_replicas(
        self, replicas: list[str] | list[dict[str, str]], reason: str
    ) -> dict[str, list[str]]:
        """Tell the catalogue these copies are corrupt, so it stops offering them and repairs them.

        ``replicas`` are PFNs, or ``{"scope", "name", "rse"}`` items; returns, per RSE, those not
        declared and why (already declared, unknown).
        """
        return self.json("POST", "/replicas/bad", body={"replicas": replicas, "reason": reason}) or {}

"""Replication rules, their locks and the dry-run explanation."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from datamgmt.client.dids import did_list
from datamgmt.client.transport import Transport, did_path, quoted


def rule_body(
    dids: Iterable[tuple[str, str]], copies: int, rse_expression: str, options: dict[str, Any]
) -> dict:
    """Rucio's ``POST /rules/`` body; ``account`` must be present even when null."""
    body: dict[str, Any] = {
        "dids": did_list(dids),
        "copies": copies,
        "rse_expression": rse_expression,
        "weight": None,
        "lifetime": None,
        "grouping": "DATASET",
        "account": None,
        "locked": False,
        "source_replica_expression": None,
        "activity": None,
        "notify": None,
        "purge_replicas": False,
        "ignore_availability": False,
        "comment": None,
        "ask_approval": False,
        "asynchronous": False,
        "priority": 3,
        "meta": None,
    }
    body.update(options)
    return body


class RuleClient(Transport):
    def add_rule(
        self, dids: Iterable[tuple[str, str]], copies: int, rse_expression: str, **options: Any
    ) -> list[str]:
        """Create rules; returns their ids. Options: lifetime, grouping, weight, comment, ..."""
        return self.json("POST", "/rules/", body=rule_body(dids, copies, rse_expression, options))

    def explain_rule(
        self, dids: Iterable[tuple[str, str]], copies: int, rse_expression: str, **options: Any
    ) -> dict[str, Any]:
        """Our dry-run extension: the RSEs the rule would choose and why, without creating it."""
        return self.json("POST", "/rules/explain", body=rule_body(dids, copies, rse_expression, options))

    def move_rule(self, rule_id: str, rse_expression: str, **override: Any) -> str:
        """Make a child rule on ``rse_expression``; the old rule goes once the child is OK. Returns the child's id."""
        return self.json(
            "POST",
            f"/rules/{quoted(rule_id)}/move",
            body={"rse_expression": rse_expression, "override": override},
        )

    def list_rule_history(self, scope: str, name: str) -> Iterator[dict[str, Any]]:
        """Every rule a DID has had, current and gone, with its states over time (Rucio's full history)."""
        return self.stream("GET", f"/rules/{did_path(scope, name)}/history")

    def get_rule(self, rule_id: str) -> dict[str, Any]:
        return self.json("GET", f"/rules/{quoted(rule_id)}")

    def update_rule(self, rule_id: str, **options: Any) -> None:
        """Options such as lifetime, locked, comment, priority, state."""
        self.call("PUT", f"/rules/{quoted(rule_id)}", body={"options": options})

    def delete_rule(self, rule_id: str, purge_replicas: bool | None = None) -> None:
        self.call("DELETE", f"/rules/{quoted(rule_id)}", body={"purge_replicas": purge_replicas})

    def list_rule_locks(self, rule_id: str) -> Iterator[dict[str, Any]]:
        return self.stream("GET", f"/rules/{quoted(rule_id)}/locks")

    def list_account_rules(self, account: str) -> Iterator[dict[str, Any]]:
        return self.stream("GET", f"/accounts/{quoted(account)}/rules")

    def list_rules(self, **filters: str) -> Iterator[dict[str, Any]]:
        """Rules matching equality filters (state, account, rse_expression, scope, name, activity, ...)."""
        return self.stream("GET", "/rules/", params=filters)

    def approve_rule(self, rule_id: str) -> None:
        self.call("PUT", f"/rules/{quoted(rule_id)}", body={"options": {"approve": True}})

    def deny_rule(self, rule_id: str, reason: str | None = None) -> None:
        self.call("PUT", f"/rules/{quoted(rule_id)}", body={"options": {"approve": False, "comment": reason}})

    def list_did_rules(self, scope: str, name: str) -> Iterator[dict[str, Any]]:
        return self.stream("GET", f"/dids/{did_path(scope, name)}/rules")

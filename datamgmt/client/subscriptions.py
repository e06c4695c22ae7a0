"""Subscriptions: standing orders that make rules for new DIDs matching a filter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from datamgmt.client.transport import Transport, quoted


class SubscriptionClient(Transport):
    def add_subscription(
        self,
        account: str,
        name: str,
        filter_: dict[str, Any],
        replication_rules: list[dict[str, Any]],
        **options: Any,
    ) -> str:
        """Create a subscription; returns its id.  Options: comments, lifetime, priority, dry_run, retroactive."""
        body = {"options": {"filter": filter_, "replication_rules": replication_rules, **options}}
        return self.request("POST", f"/subscriptions/{quoted(account)}/{quoted(name)}", body=body).text

    def update_subscription(self, account: str, name: str, **options: Any) -> None:
        """Change filter, replication_rules, comments, lifetime, priority or state (ACTIVE, INACTIVE)."""
        self.call("PUT", f"/subscriptions/{quoted(account)}/{quoted(name)}", body={"options": options})

    def list_subscriptions(
        self, account: str | None = None, name: str | None = None
    ) -> Iterator[dict[str, Any]]:
        if account and name:
            return self.stream("GET", f"/subscriptions/{quoted(account)}/{quoted(name)}")
        if name:
            return self.stream("GET", f"/subscriptions/name/{quoted(name)}")
        return self.stream("GET", f"/subscriptions/{quoted(account)}" if account else "/subscriptions/")

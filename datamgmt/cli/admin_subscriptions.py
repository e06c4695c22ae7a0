"""``datamgmt-admin subscription add|list|update``: standing orders that make rules for new DIDs."""

from __future__ import annotations

import json
from typing import Any

import click

from datamgmt.cli.context import AppContext, Group, pass_app
from datamgmt.cli.output import Column

SUBSCRIPTION_COLUMNS = (
    Column("name"),
    Column("account"),
    Column("state", kind="state"),
    Column("filter"),
    Column("replication_rules", "rules"),
    Column("last_processed", "last processed"),
)


def _json(kind: type) -> Any:
    def convert(ctx: click.Context | None, param: click.Parameter | None, value: str | None) -> Any:
        if value is None:
            return None
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}") from exc
        if not isinstance(parsed, kind):
            raise click.BadParameter(f"must be a JSON {'object' if kind is dict else 'list'}")
        return parsed

    return convert


filter_option = click.option(
    "--filter",
    "filter_",
    callback=_json(dict),
    metavar="JSON",
    help='DIDs to match, e.g. \'{"scope": ["data18"], "pattern": "AOD.*"}\'.',
)
rules_option = click.option(
    "--rules",
    "replication_rules",
    callback=_json(list),
    metavar="JSON",
    help='Rules to make, e.g. \'[{"copies": 2, "rse_expression": "tier=1", "lifetime": 86400}]\'.',
)


@click.group("subscription", cls=Group)
def subscription_group() -> None:
    """Subscriptions: rules made automatically for new DIDs that match a filter."""


@subscription_group.command("add")
@click.argument("name")
@click.option("--account", help="Owner (default: the caller).")
@filter_option
@rules_option
@click.option("--comment")
@click.option("--lifetime", type=click.IntRange(1), help="Seconds until the subscription expires.")
@click.option("--priority", type=click.IntRange(1, 5))
@click.option("--dry-run", is_flag=True, help="Match and report, make no rules.")
@pass_app
def subscription_add(
    app: AppContext,
    name: str,
    account: str | None,
    filter_: dict | None,
    replication_rules: list | None,
    comment: str | None,
    lifetime: int | None,
    priority: int | None,
    dry_run: bool,
) -> None:
    """Create a subscription."""
    if filter_ is None or replication_rules is None:
        raise click.UsageError("a subscription needs --filter and --rules")
    options = {
        key: value
        for key, value in (("comments", comment), ("lifetime", lifetime), ("priority", priority))
        if value is not None
    }
    owner = account or app.client.account
    subscription_id = app.client.add_subscription(
        owner, name, filter_, replication_rules, dry_run=dry_run, **options
    )
    app.output.done(
        f"added subscription {name} of {owner}: {subscription_id}",
        id=subscription_id,
        name=name,
        account=owner,
    )


@subscription_group.command("list")
@click.option("--account", help="Only this account's subscriptions.")
@click.option("--name", help="Only subscriptions of this name.")
@pass_app
def subscription_list(app: AppContext, account: str | None, name: str | None) -> None:
    """Subscriptions, with their filter and rules."""
    app.output.table(app.client.list_subscriptions(account, name), SUBSCRIPTION_COLUMNS)


@subscription_group.command("update")
@click.argument("name")
@click.option("--account", help="Owner (default: the caller).")
@filter_option
@rules_option
@click.option("--comment")
@click.option("--lifetime", type=click.IntRange(1))
@click.option("--priority", type=click.IntRange(1, 5))
@click.option("--state", type=click.Choice(["ACTIVE", "INACTIVE"], case_sensitive=False))
@pass_app
def subscription_update(
    app: AppContext,
    name: str,
    account: str | None,
    filter_: dict | None,
    replication_rules: list | None,
    comment: str | None,
    lifetime: int | None,
    priority: int | None,
    state: str | None,
) -> None:
    """Change a subscription's filter, rules, comment, lifetime, priority or state."""
    changes = {
        key: value
        for key, value in (
            ("filter", filter_),
            ("replication_rules", replication_rules),
            ("comments", comment),
            ("lifetime", lifetime),
            ("priority", priority),
            ("state", state and state.upper()),
        )
        if value is not None
    }
    if not changes:
        raise click.UsageError("Nothing to update: give at least one option")
    owner = account or app.client.account
    app.client.update_subscription(owner, name, **changes)
    app.output.done(f"updated subscription {name} of {owner}", name=name, account=owner, **changes)

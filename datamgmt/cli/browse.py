"""Read-only views users need without the admin tool: RSEs, scopes and subscriptions."""

from __future__ import annotations

import click

from datamgmt.cli.admin_rses import rse_list, rse_show
from datamgmt.cli.context import AppContext, Group, pass_app
from datamgmt.cli.output import Column
from datamgmt.exceptions import SubscriptionNotFound

SUBSCRIPTION_COLUMNS = (
    Column("name"),
    Column("account"),
    Column("state", kind="state"),
    Column("filter"),
    Column("replication_rules", "rules"),
    Column("last_processed", "last processed"),
)


@click.group("rse", cls=Group)
def user_rse_group() -> None:
    """Storage endpoints (RSEs): where data can live."""


user_rse_group.add_command(rse_list)
user_rse_group.add_command(rse_show)


@click.group("scope", cls=Group)
def user_scope_group() -> None:
    """Scopes: the namespaces of DIDs."""


@user_scope_group.command("list")
@click.option("--account", help="The scopes of this account [default: mine, the ones I may write to].")
@click.option("--all", "every", is_flag=True, help="Every scope, whoever owns it.")
@pass_app
def scope_list(app: AppContext, account: str | None, every: bool) -> None:
    """The scopes I (or an account) may write to, or all of them."""
    owner = None if every else account or app.client.account
    app.output.table(({"scope": scope} for scope in app.client.list_scopes(owner)), (Column("scope"),))


@click.group("subscription", cls=Group)
def subscription_group() -> None:
    """Subscriptions: rules made automatically for new DIDs that match a filter."""


@subscription_group.command("list")
@click.option("--account", help="The subscriptions of this account [default: mine].")
@click.option("--name", help="Only the subscription of this name.")
@pass_app
def subscription_list(app: AppContext, account: str | None, name: str | None) -> None:
    """Subscriptions of an account, with their filter and rules (none is an empty list, not an error)."""
    try:
        found = list(app.client.list_subscriptions(account or app.client.account, name))
    except SubscriptionNotFound:  # Rucio's server answers 404 for an empty listing
        found = []
    app.output.table(found, SUBSCRIPTION_COLUMNS)

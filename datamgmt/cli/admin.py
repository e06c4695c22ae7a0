"""``datamgmt-admin``: commands for community admins (accounts, quotas, scopes, PID services).

RSE commands live in :mod:`datamgmt.cli.admin_rses`; ``db upgrade`` and ``bootstrap`` are added
by :mod:`datamgmt.manage`, the entry point, because they touch the catalogue directly.
"""

from __future__ import annotations

import click

from datamgmt.cli.admin_ops import status_command, transfers_group
from datamgmt.cli.admin_rses import rse_group
from datamgmt.cli.admin_subscriptions import subscription_group
from datamgmt.cli.context import AppContext, Group, make_root, pass_app
from datamgmt.cli.exist_ok import create, differs, exist_ok_option
from datamgmt.cli.output import Column, parse_size
from datamgmt.exceptions import Duplicate

ACCOUNT_COLUMNS = (Column("account"), Column("type"), Column("status", kind="state"), Column("email"))
IDENTITY_COLUMNS = (Column("identity"), Column("type"), Column("email"))
LIMIT_COLUMNS = (
    Column("scope", "kind"),
    Column("rse", "RSE or expression"),
    Column("bytes", "limit", kind="size"),
)
PID_SERVICE_COLUMNS = (
    Column("name"),
    Column("type"),
    Column("prefix"),
    Column("endpoint"),
    Column("is_default", "default"),
)

cli = make_root("datamgmt-admin", "Administer a datamgmt service: accounts, RSEs, quotas, PID services.")
cli.add_command(rse_group)
cli.add_command(status_command)
cli.add_command(transfers_group)
cli.add_command(subscription_group)


@cli.group("account", cls=Group)
def account_group() -> None:
    """Accounts: who may act."""


@account_group.command("add")
@click.argument("account")
@click.option(
    "--type",
    "account_type",
    type=click.Choice(["USER", "GROUP", "SERVICE"]),
    default="USER",
    show_default=True,
)
@click.option("--email")
@exist_ok_option
@pass_app
def account_add(app: AppContext, account: str, account_type: str, email: str | None, exist_ok: bool) -> None:
    """Create an account."""

    def existing(error: Duplicate) -> str:
        found = app.client.get_account(account)["account_type"]
        if found != account_type:
            raise differs(error, f"as a {found} account")
        return f"account {account} already exists"

    already = create(exist_ok, lambda: app.client.add_account(account, account_type, email), existing)
    app.output.done(
        already or f"added account {account}", account=account, type=account_type, existed=already is not None
    )


@account_group.command("list")
@click.option("--type", "account_type", type=click.Choice(["USER", "GROUP", "SERVICE"]))
@pass_app
def account_list(app: AppContext, account_type: str | None) -> None:
    """All accounts."""
    app.output.table(app.client.list_accounts(account_type), ACCOUNT_COLUMNS)


@account_group.command("show")
@click.argument("account")
@pass_app
def account_show(app: AppContext, account: str) -> None:
    """An account and its identities."""
    document = dict(app.client.get_account(account))
    document["identities"] = [
        f"{item.get('type')}:{item.get('identity')}" for item in app.client.list_identities(account)
    ]
    app.output.record(document, [Column("status", kind="state")])


@account_group.command("suspend")
@click.argument("account")
@pass_app
def account_suspend(app: AppContext, account: str) -> None:
    """Suspend an account: its identities can no longer log in."""
    app.client.suspend_account(account)
    app.output.done(f"suspended account {account}", account=account, status="SUSPENDED")


@account_group.command("unsuspend")
@click.argument("account")
@pass_app
def account_unsuspend(app: AppContext, account: str) -> None:
    """Make a suspended account ACTIVE again: its identities can log in."""
    app.client.unsuspend_account(account)
    app.output.done(f"unsuspended account {account}", account=account, status="ACTIVE")


@cli.group("identity", cls=Group)
def identity_group() -> None:
    """Identities (userpass, OIDC, X.509) that log in as an account."""


identity_type = click.option(
    "--type", "authtype", type=click.Choice(["USERPASS", "OIDC", "X509"], case_sensitive=False), required=True
)


@identity_group.command("add")
@click.option("--account", required=True)
@identity_type
@click.option("--id", "identity", required=True, help="Username, 'sub@issuer' or the certificate DN.")
@click.option("--email")
@click.option("--password", help="For USERPASS identities.")
@pass_app
def identity_add(
    app: AppContext, account: str, authtype: str, identity: str, email: str | None, password: str | None
) -> None:
    """Let an identity act as an account."""
    if authtype.upper() == "USERPASS" and not password:
        raise click.UsageError("A USERPASS identity needs --password")
    app.client.add_identity(account, identity, authtype.upper(), email=email, password=password)
    app.output.done(
        f"added {authtype.upper()} identity {identity} to {account}",
        account=account,
        identity=identity,
        type=authtype.upper(),
    )


@identity_group.command("delete")
@click.option("--account", required=True)
@identity_type
@click.option("--id", "identity", required=True)
@pass_app
def identity_delete(app: AppContext, account: str, authtype: str, identity: str) -> None:
    """Stop an identity from acting as an account."""
    app.client.delete_identity(account, identity, authtype.upper())
    app.output.done(
        f"deleted {authtype.upper()} identity {identity} from {account}",
        account=account,
        identity=identity,
        deleted=True,
    )


@cli.group("limit", cls=Group)
def limit_group() -> None:
    """Quotas: how many bytes an account's rules may lock."""


@limit_group.command("set")
@click.argument("account")
@click.argument("rse")
@click.argument("size")
@click.option(
    "--global", "is_global", is_flag=True, help="RSE is an RSE expression: a limit over all its RSEs."
)
@pass_app
def limit_set(app: AppContext, account: str, rse: str, size: str, is_global: bool) -> None:
    """Set ACCOUNT's limit on RSE to SIZE (10GB, 1.5TiB, or infinity)."""
    nbytes = parse_size(size)
    if is_global:
        app.client.set_global_limit(account, rse, nbytes)
    else:
        app.client.set_local_limit(account, rse, nbytes)
    app.output.done(f"limit of {account} on {rse}: {size}", account=account, rse=rse, bytes=nbytes)


@limit_group.command("list")
@click.argument("account")
@pass_app
def limit_list(app: AppContext, account: str) -> None:
    """An account's limits, per RSE and per RSE expression."""
    rows = [
        {"scope": "local", "rse": rse, "bytes": value}
        for rse, value in sorted(app.client.get_local_limits(account).items())
    ]
    rows += [
        {"scope": "global", "rse": expression, "bytes": value}
        for expression, value in sorted(app.client.get_global_limits(account).items())
    ]
    app.output.table(rows, LIMIT_COLUMNS)


@cli.group("scope", cls=Group)
def scope_group() -> None:
    """Scopes: the namespaces of DIDs."""


@scope_group.command("add")
@click.argument("scope")
@click.option("--account", required=True, help="The owner, who may write in it.")
@exist_ok_option
@pass_app
def scope_add(app: AppContext, scope: str, account: str, exist_ok: bool) -> None:
    """Create a scope owned by an account."""

    def existing(error: Duplicate) -> str:
        if scope not in app.client.list_scopes(account):
            raise differs(error, f"it does not belong to {account}")
        return f"scope {scope} of {account} already exists"

    already = create(exist_ok, lambda: app.client.add_scope(account, scope), existing)
    app.output.done(
        already or f"added scope {scope} for {account}",
        scope=scope,
        account=account,
        existed=already is not None,
    )


@scope_group.command("list")
@click.option("--account", help="Only the scopes of this account.")
@pass_app
def scope_list(app: AppContext, account: str | None) -> None:
    """All scopes."""
    app.output.table(({"scope": scope} for scope in app.client.list_scopes(account)), (Column("scope"),))


@cli.group("pid-service", cls=Group)
def pid_service_group() -> None:
    """Services that mint PIDs for published DIDs."""


@pid_service_group.command("add")
@click.argument("name")
@click.option("--type", "service_type", type=click.Choice(["local", "handle", "datacite"]), required=True)
@click.option("--prefix", required=True, help="Handle or DOI prefix, e.g. 21.T12345 or 10.5072.")
@click.option("--endpoint", help="REST endpoint of the Handle or DataCite service.")
@click.option("--username")
@click.option("--password", "secret", help="Its password or API secret.")
@click.option("--default", "is_default", is_flag=True, help="Use it when publish names no service.")
@pass_app
def pid_service_add(
    app: AppContext,
    name: str,
    service_type: str,
    prefix: str,
    endpoint: str | None,
    username: str | None,
    secret: str | None,
    is_default: bool,
) -> None:
    """Configure a PID service."""
    service = app.client.add_pid_service(
        name, service_type, prefix, endpoint=endpoint, username=username, secret=secret, is_default=is_default
    )
    app.output.done(f"added PID service {name}", **service)


@pid_service_group.command("list")
@pass_app
def pid_service_list(app: AppContext) -> None:
    """The configured PID services."""
    app.output.table(app.client.list_pid_services(), PID_SERVICE_COLUMNS)

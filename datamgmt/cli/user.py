"""``datamgmt``: the command line of the people who own and use the data.

Shell completion is click's: ``eval "$(_DATAMGMT_COMPLETE=bash_source datamgmt)"`` (or
``zsh_source``/``fish_source``), documented in docs/cli.md.
"""

from __future__ import annotations

from typing import Any

from datamgmt.cli.browse import subscription_group, user_rse_group, user_scope_group
from datamgmt.cli.context import AppContext, make_root, pass_app
from datamgmt.cli.dids import did_group, replica_group
from datamgmt.cli.errors import run_cli
from datamgmt.cli.meta import meta_group, publish_command, unpublish_command
from datamgmt.cli.output import Column, human_size
from datamgmt.cli.replica_remove import replica_remove_command
from datamgmt.cli.replicas_bad import declare_bad_command
from datamgmt.cli.rules import rule_group
from datamgmt.cli.transfers import download_command, upload_command
from datamgmt.client.quota import UNLIMITED, is_admin

QUOTA_COLUMNS = (
    Column("rse", "RSE"),
    Column("bytes", "used", kind="size"),
    Column("files"),
    Column("bytes_limit", "limit", kind="size"),
    Column("bytes_remaining", "remaining", kind="size"),
    Column("note"),
)
GLOBAL_QUOTA_COLUMNS = (
    Column("rse_expression", "RSE expression"),
    Column("bytes", "used", kind="size"),
    Column("files"),
    Column("bytes_limit", "limit", kind="size"),
    Column("bytes_remaining", "remaining", kind="size"),
    Column("note"),
)

cli = make_root("datamgmt", "Find, move, download and publish data managed by a datamgmt service.")


@cli.command("whoami")
@pass_app
def whoami(app: AppContext) -> None:
    """The account the client acts as."""
    app.output.record(app.client.whoami())


@cli.command("ping")
@pass_app
def ping(app: AppContext) -> None:
    """Check that the server answers, and show its version."""
    app.output.record(app.client.ping())


def _quota_row(row: dict[str, Any], exempt: bool) -> dict[str, Any]:
    """Remaining as people read it: unlimited only for an unlimited limit (-1) or an admin, never below 0."""
    limit, used = row.get("bytes_limit"), row.get("bytes") or 0
    if exempt:
        return {
            **row,
            "bytes_limit": UNLIMITED,
            "bytes_remaining": UNLIMITED,
            "note": "admin: no quota applies",
        }
    if limit == UNLIMITED:
        return {**row, "bytes_remaining": UNLIMITED, "note": ""}
    limit = limit or 0
    over = used - limit
    return {
        **row,
        "bytes_limit": limit,
        "bytes_remaining": max(limit - used, 0),
        "note": f"over by {human_size(over)}" if over > 0 else "",
    }


@cli.command("quota")
@pass_app
def quota(app: AppContext) -> None:
    """My limits and usage, per RSE and per RSE expression."""
    client = app.client
    exempt = is_admin(client, client.account)
    local = [_quota_row(row, exempt) for row in client.local_usage(client.account)]
    global_ = [_quota_row(row, exempt) for row in client.global_usage(client.account)]
    if app.output.json:
        app.output.record({"local": local, "global": global_})
        return
    app.output.table(local, QUOTA_COLUMNS, title="per RSE")
    if global_:
        app.output.table(global_, GLOBAL_QUOTA_COLUMNS, title="per RSE expression")


for command in (
    upload_command,
    download_command,
    did_group,
    replica_group,
    rule_group,
    meta_group,
    publish_command,
    unpublish_command,
    user_rse_group,
    user_scope_group,
    subscription_group,
):
    cli.add_command(command)
replica_group.add_command(declare_bad_command)
replica_group.add_command(replica_remove_command)


def main() -> None:
    raise SystemExit(run_cli(cli))


if __name__ == "__main__":
    main()

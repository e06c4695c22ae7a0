"""``datamgmt-admin status`` and ``datamgmt-admin transfers``: what the service is doing, and why
a transfer failed, without reading the database."""

from __future__ import annotations

from typing import Any

import click

from datamgmt.cli.context import AppContext, Command, Group, pass_app
from datamgmt.cli.output import Column

TRANSFER_COLUMNS = (
    Column("created_at", "when"),
    Column("did", "DID"),
    Column("source_rse", "from"),
    Column("dest_rse", "to"),
    Column("state", kind="state"),
    Column("retry_count", "try"),
    Column("transfertool", "tool"),
    Column("external_id", "external id"),
    Column("bytes", kind="size"),
    Column("err_msg", "error"),
)
DAEMON_COLUMNS = (
    Column("daemon"),
    Column("alive", "alive"),
    Column("known", "instances"),
    Column("last_beat", "last activity"),
    Column("hosts"),
)
COUNT_COLUMNS = (Column("what"), Column("count"))
STUCK_COLUMNS = (
    Column("id", "rule"),
    Column("account"),
    Column("did", "DID"),
    Column("rse_expression", "RSEs"),
    Column("stuck_at", "stuck since"),
    Column("locks_stuck_cnt", "stuck locks"),
    Column("error", "cause"),
)
RSE_COLUMNS = (
    Column("rse", "RSE"),
    Column("catalogue", "catalogue", kind="size"),
    Column("storage_used", "storage used", kind="size"),
    Column("storage_free", "free", kind="size"),
    Column("MinFreeSpace", "MinFreeSpace", kind="size"),
    Column("warning"),
)


@click.command("status", cls=Command)
@pass_app
def status_command(app: AppContext) -> None:
    """Daemons alive and their last activity, queue depths, rules by state, stuck rules with their
    causes, and RSE usage against MinFreeSpace (``--json``: the same as one document)."""
    report = app.client.status()
    if app.output.json:
        app.output.record(report)
        return
    out = app.output
    out.table(_daemon_rows(report["daemons"]), DAEMON_COLUMNS, title="daemons (from heartbeats)")
    out.table(
        ({"what": key.replace("_", " "), "count": value} for key, value in report["queues"].items()),
        COUNT_COLUMNS,
        title="queues",
    )
    out.table(
        ({"what": state, "count": count} for state, count in report["rules"].items()),
        COUNT_COLUMNS,
        title="rules by state",
    )
    stuck = report["stuck_rules"]
    if stuck["count"]:
        out.table(stuck["oldest"], STUCK_COLUMNS, title=f"stuck rules ({stuck['count']}, oldest first)")
    out.table(_rse_rows(report["rses"]), RSE_COLUMNS, title="RSE usage")
    click.echo(f"transfer failures in the last hour: {report['transfer_failures_last_hour']}")


def _daemon_rows(daemons: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "daemon": name,
            "alive": entry["alive"],
            "known": len(entry["instances"]),
            "last_beat": entry["last_beat"],
            "hosts": ", ".join(sorted({i["host"] for i in entry["instances"] if i["alive"]})),
        }
        for name, entry in sorted(daemons.items())
    ]


def _rse_rows(rses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for entry in rses:
        storage = entry.get("storage") or {}
        rows.append(
            {
                "rse": entry["rse"],
                "catalogue": (entry.get("rucio") or {}).get("used"),
                "storage_used": storage.get("used"),
                "storage_free": storage.get("free"),
                "MinFreeSpace": entry.get("MinFreeSpace"),
                "warning": "below MinFreeSpace" if entry.get("below_min_free") else "",
            }
        )
    return rows


@click.group("transfers", cls=Group)
def transfers_group() -> None:
    """Transfer attempts: what was copied where, by which tool, and why it failed."""


@transfers_group.command("list")
@click.option("--failed", is_flag=True, help="Only failed attempts.")
@click.option("--rse", help="Attempts to or from this RSE.")
@click.option("--rule", "rule_id", help="Attempts of this rule.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@pass_app
def transfers_list(app: AppContext, failed: bool, rse: str | None, rule_id: str | None, limit: int) -> None:
    """The newest transfer attempts first, with the tool's error text."""
    rows = [
        {**row, "did": f"{row['scope']}:{row['name']}"}
        for row in app.client.list_transfers(rule_id=rule_id, rse=rse, failed=failed, limit=limit)
    ]
    app.output.table(rows, TRANSFER_COLUMNS)

"""``datamgmt-admin rse``: storage endpoints, their protocols, attributes, limits and distances."""

from __future__ import annotations

import json

import click

from datamgmt.cli.context import AppContext, Group, pass_app
from datamgmt.cli.exist_ok import create, differs, exist_ok_option
from datamgmt.cli.output import Column, parse_size
from datamgmt.exceptions import Duplicate

RSE_COLUMNS = (
    Column("rse", "RSE"),
    Column("rse_type", "type"),
    Column("deterministic"),
    Column("volatile"),
    Column("availability_read", "read"),
    Column("availability_write", "write"),
    Column("availability_delete", "delete"),
)
PROTOCOL_COLUMNS = (
    Column("scheme"),
    Column("hostname"),
    Column("port"),
    Column("prefix"),
    Column("impl"),
    Column("domains"),
)
USAGE_COLUMNS = (
    Column("source"),
    Column("used", kind="size"),
    Column("free", kind="size"),
    Column("total", kind="size"),
    Column("files"),
)


@click.group("rse", cls=Group)
def rse_group() -> None:
    """Storage endpoints (RSEs)."""


@rse_group.command("add")
@click.argument("rse")
@click.option("--non-deterministic", is_flag=True, help="Paths are registered per replica, not derived.")
@click.option("--volatile", is_flag=True, help="A cache: replicas may vanish.")
@click.option("--type", "rse_type", type=click.Choice(["DISK", "TAPE"]), default="DISK", show_default=True)
@exist_ok_option
@pass_app
def rse_add(
    app: AppContext, rse: str, non_deterministic: bool, volatile: bool, rse_type: str, exist_ok: bool
) -> None:
    """Create an RSE (then give it a protocol with add-protocol)."""

    def existing(error: Duplicate) -> str:
        found = app.client.get_rse(rse)
        asked = {"deterministic": not non_deterministic, "volatile": volatile, "rse_type": rse_type}
        changed = sorted(key for key, value in asked.items() if found.get(key) != value)
        if changed:
            raise differs(error, f"with another {', '.join(changed)}")
        return f"RSE {rse} already exists"

    already = create(
        exist_ok,
        lambda: app.client.add_rse(
            rse, deterministic=not non_deterministic, volatile=volatile, rse_type=rse_type
        ),
        existing,
    )
    app.output.done(already or f"added RSE {rse}", rse=rse, existed=already is not None)


@rse_group.command("list")
@click.option("--expression", help="Only RSEs matching this RSE expression.")
@pass_app
def rse_list(app: AppContext, expression: str | None) -> None:
    """All RSEs, or those an expression selects."""
    app.output.table(app.client.list_rses(expression), RSE_COLUMNS[:1] if expression else RSE_COLUMNS)


@rse_group.command("show")
@click.argument("rse")
@pass_app
def rse_show(app: AppContext, rse: str) -> None:
    """Properties, protocols, attributes, limits and usage of an RSE."""
    client, output = app.client, app.output
    info = client.get_rse(rse)
    attributes = client.list_rse_attributes(rse)
    limits = client.get_rse_limits(rse)
    usage = list(client.get_rse_usage(rse))
    if output.json:
        output.record({**info, "attributes": attributes, "limits": limits, "usage": usage})
        return
    protocols = info.pop("protocols", [])
    output.record(info)
    output.table(protocols, PROTOCOL_COLUMNS, title="protocols")
    output.table(
        ({"key": key, "value": value} for key, value in sorted(attributes.items())),
        (Column("key"), Column("value")),
        title="attributes",
    )
    output.table(
        ({"name": key, "value": value} for key, value in sorted(limits.items())),
        (Column("name"), Column("value", kind="size")),
        title="limits",
    )
    output.table(usage, USAGE_COLUMNS, title="usage")


@rse_group.command("delete")
@click.argument("rse")
@click.confirmation_option(prompt="Delete this RSE? Rules can no longer choose it.")
@pass_app
def rse_delete(app: AppContext, rse: str) -> None:
    """Delete an RSE (refused while it still holds replicas)."""
    app.client.delete_rse(rse)
    app.output.done(f"deleted RSE {rse}", rse=rse, deleted=True)


@rse_group.command("set-attribute")
@click.argument("rse")
@click.option("--key", required=True)
@click.option("--value", required=True)
@pass_app
def rse_set_attribute(app: AppContext, rse: str, key: str, value: str) -> None:
    """Set an attribute (RSE expressions select on them: tier=1&country=XX)."""
    app.client.set_rse_attribute(rse, key, value)
    app.output.done(f"{rse}: {key}={value}", rse=rse, key=key, value=value)


@rse_group.command("delete-attribute")
@click.argument("rse")
@click.option("--key", required=True)
@pass_app
def rse_delete_attribute(app: AppContext, rse: str, key: str) -> None:
    """Remove an attribute."""
    app.client.delete_rse_attribute(rse, key)
    app.output.done(f"{rse}: removed {key}", rse=rse, key=key, deleted=True)


@rse_group.command("add-protocol")
@click.argument("rse")
@click.option("--scheme", required=True, help="file, root, davs, https, s3 ...")
@click.option("--hostname", default="localhost", show_default=True)
@click.option("--port", type=int, default=0)
@click.option("--prefix", required=True, help="Directory (or bucket path) under which the RSE's files live.")
@click.option(
    "--impl",
    default="",
    help="Implementation (posix, gfal, s3, or a Rucio impl path) [default: chosen by scheme].",
)
@click.option(
    "--priority",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Priority of every operation in both domains (lower is preferred).",
)
@click.option("--domain-json", help="Rucio's per-domain priorities as JSON; overrides --priority.")
@exist_ok_option
@pass_app
def rse_add_protocol(
    app: AppContext,
    rse: str,
    scheme: str,
    hostname: str,
    port: int,
    prefix: str,
    impl: str,
    priority: int,
    domain_json: str | None,
    exist_ok: bool,
) -> None:
    """Tell the service how to reach an RSE's storage."""
    if domain_json:
        try:
            domains = json.loads(domain_json)
        except ValueError as error:
            raise click.BadParameter(f"not JSON: {error}", param_hint="--domain-json") from None
    else:
        domains = {
            "lan": {"read": priority, "write": priority, "delete": priority},
            "wan": {
                "read": priority,
                "write": priority,
                "delete": priority,
                "third_party_copy_read": priority,
                "third_party_copy_write": priority,
            },
        }
    record = {
        "scheme": scheme,
        "hostname": hostname,
        "port": port,
        "prefix": prefix,
        "impl": impl,
        "domains": domains,
    }
    url = f"{scheme}://{hostname}{f':{port}' if port else ''}{prefix}"

    def existing(error: Duplicate) -> str:
        same = [
            p
            for p in app.client.get_rse(rse).get("protocols", [])
            if (p.get("scheme"), p.get("hostname"), p.get("port")) == (scheme, hostname, port)
        ]
        if not any(p.get("prefix", "").rstrip("/") == prefix.rstrip("/") for p in same):
            raise differs(error, f"not with the prefix {prefix}")
        return f"{rse}: already has {url}"

    already = create(exist_ok, lambda: app.client.add_protocol(rse, record), existing)
    app.output.done(already or f"{rse}: added {url}", rse=rse, existed=already is not None, **record)


@rse_group.command("set-limit")
@click.argument("rse")
@click.argument("name")
@click.argument("value")
@pass_app
def rse_set_limit(app: AppContext, rse: str, name: str, value: str) -> None:
    """Set a limit such as MinFreeSpace (sizes like 10GB)."""
    nbytes = parse_size(value)
    app.client.set_rse_limit(rse, name, nbytes)
    app.output.done(f"{rse}: {name}={value}", rse=rse, name=name, value=nbytes)


@rse_group.command("set-distance")
@click.argument("source")
@click.argument("destination")
@click.argument("distance", type=click.IntRange(0))
@pass_app
def rse_set_distance(app: AppContext, source: str, destination: str, distance: int) -> None:
    """Link two RSEs (transfers go only along links; lower distance is preferred)."""
    app.client.set_distance(source, destination, distance)
    app.output.done(
        f"{source} -> {destination}: {distance}", source=source, destination=destination, distance=distance
    )


@rse_group.command("set-availability")
@click.argument("rse")
@click.option("--read/--no-read", default=None)
@click.option("--write/--no-write", default=None)
@click.option("--delete/--no-delete", default=None)
@pass_app
def rse_set_availability(
    app: AppContext, rse: str, read: bool | None, write: bool | None, delete: bool | None
) -> None:
    """Allow or block reads, writes and deletions on an RSE."""
    if read is None and write is None and delete is None:
        raise click.UsageError(
            "Give at least one of --read/--no-read, --write/--no-write, --delete/--no-delete"
        )
    app.client.set_availability(rse, read=read, write=write, delete=delete)
    changes = {
        key: value
        for key, value in (("read", read), ("write", write), ("delete", delete))
        if value is not None
    }
    app.output.done(
        f"{rse}: " + ", ".join(f"{key}={value}" for key, value in changes.items()), rse=rse, **changes
    )

"""``did`` and ``replica`` commands."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import click

from datamgmt.cli.context import DID, AppContext, Group, pass_app
from datamgmt.cli.output import Column

DID_COLUMNS = (
    Column("scope"),
    Column("name"),
    Column("did_type", "type"),
    Column("bytes", kind="size"),
    Column("length", "files"),
)
CONTENT_COLUMNS = (Column("scope"), Column("name"), Column("did_type", "type"), Column("bytes", kind="size"))
FILE_COLUMNS = (
    Column("scope"),
    Column("name"),
    Column("bytes", kind="size"),
    Column("adler32"),
    Column("guid"),
)
PARENT_COLUMNS = (Column("scope"), Column("name"), Column("did_type", "type"))
#: Seconds a removed DID stays before the undertaker deletes it (Rucio's erase grace period).
REMOVE_GRACE = 86400
DATASET_REPLICA_COLUMNS = (
    Column("did", "DID"),
    Column("rse", "RSE"),
    Column("available_length", "files here"),
    Column("length", "files"),
    Column("available_bytes", "bytes here", kind="size"),
    Column("bytes", kind="size"),
    Column("state", kind="state"),
)
REPLICA_COLUMNS = (
    Column("did", "DID"),
    Column("bytes", kind="size"),
    Column("adler32"),
    Column("rse", "RSE"),
    Column("state", kind="state"),
    Column("pfn", "PFN"),
)


def _did_type_key(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Rucio lists content and parents with ``type``, DIDs with ``did_type``: the CLI says ``did_type`` always."""
    for row in rows:
        row = dict(row)
        if "type" in row:
            row.setdefault("did_type", row.pop("type"))
        yield row


@click.group("did", cls=Group)
def did_group() -> None:
    """Files, datasets and containers (SCOPE:NAME)."""


@did_group.command("add")
@click.argument("did", type=DID)
@click.option(
    "--type",
    "did_type",
    type=click.Choice(["dataset", "container"], case_sensitive=False),
    default="dataset",
    show_default=True,
)
@click.option("--lifetime", type=click.IntRange(1), help="Seconds until the DID expires.")
@pass_app
def did_add(app: AppContext, did: tuple[str, str], did_type: str, lifetime: int | None) -> None:
    """Create a dataset or a container."""
    app.client.add_did(*did, did_type, lifetime=lifetime)
    app.output.done(
        f"added {did_type.upper()} {did[0]}:{did[1]}", scope=did[0], name=did[1], did_type=did_type.upper()
    )


def _search(app: AppContext, scope: str, pattern: str, filters: str, did_type: str | None) -> None:
    expression = ",".join(part for part in (filters, f"type={did_type}" if did_type else "") if part)
    app.output.table(app.client.search_dids(scope, expression, name=pattern or "*"), DID_COLUMNS)


type_option = click.option(
    "--type",
    "did_type",
    type=click.Choice(["all", "file", "dataset", "container", "collection"], case_sensitive=False),
    help="Only DIDs of this type [default: all].",
)


@did_group.command("list")
@click.argument("pattern", metavar="SCOPE[:PATTERN]")
@click.option("--filter", "filters", default="", help="Metadata conditions, e.g. 'run>3,type=dataset'.")
@type_option
@pass_app
def did_list(app: AppContext, pattern: str, filters: str, did_type: str | None) -> None:
    """List the DIDs of a scope whose names match a wildcard pattern."""
    scope, _, name = pattern.partition(":")
    _search(app, scope, name, filters, did_type)


@did_group.command("search")
@click.argument("pattern", metavar="SCOPE[:PATTERN]")
@click.option(
    "--filter",
    "filters",
    required=True,
    help="',' joins conditions (AND), ';' starts alternatives (OR): 'key>3,type=DATASET;key=1'.",
)
@type_option
@pass_app
def did_search(app: AppContext, pattern: str, filters: str, did_type: str | None) -> None:
    """Find DIDs by metadata; operators =, !=, <, <=, >, >= and wildcards in values."""
    scope, _, name = pattern.partition(":")
    _search(app, scope, name, filters, did_type)


@did_group.command("show")
@click.argument("did", type=DID)
@pass_app
def did_show(app: AppContext, did: tuple[str, str]) -> None:
    """Type, owner, status, size and file count of a DID."""
    app.output.record(next(_did_type_key([app.client.get_did(*did)])), [Column("bytes", kind="size")])


@did_group.command("attach")
@click.argument("parent", type=DID)
@click.argument("children", nargs=-1, required=True, type=DID)
@pass_app
def did_attach(app: AppContext, parent: tuple[str, str], children: tuple[tuple[str, str], ...]) -> None:
    """Put files into a dataset, or datasets and containers into a container."""
    app.client.attach(*parent, children)
    app.output.done(f"attached {len(children)} DIDs to {parent[0]}:{parent[1]}", attached=len(children))


@did_group.command("detach")
@click.argument("parent", type=DID)
@click.argument("children", nargs=-1, required=True, type=DID)
@pass_app
def did_detach(app: AppContext, parent: tuple[str, str], children: tuple[tuple[str, str], ...]) -> None:
    """Take DIDs out of a dataset or container."""
    app.client.detach(*parent, children)
    app.output.done(f"detached {len(children)} DIDs from {parent[0]}:{parent[1]}", detached=len(children))


@did_group.command("close")
@click.argument("did", type=DID)
@pass_app
def did_close(app: AppContext, did: tuple[str, str]) -> None:
    """Close a dataset or container: no more content can be attached."""
    app.client.close(*did)
    app.output.done(f"closed {did[0]}:{did[1]}", scope=did[0], name=did[1], open=False)


@did_group.command("update")
@click.argument("did", type=DID)
@click.option(
    "--lifetime",
    required=True,
    metavar="SECONDS|none",
    help="Seconds until the DID expires (and is deleted), or 'none' to keep it for good.",
)
@pass_app
def did_update(app: AppContext, did: tuple[str, str], lifetime: str) -> None:
    """Change a DID's lifetime."""
    value = None if lifetime.lower() == "none" else lifetime
    app.client.set_metadata(*did, "lifetime", value)
    app.output.done(
        f"{did[0]}:{did[1]} " + ("kept for good" if value is None else f"expires in {value} s"),
        scope=did[0],
        name=did[1],
        lifetime=value,
    )


@did_group.command("remove")
@click.argument("dids", nargs=-1, required=True, type=DID)
@click.option("--undo", is_flag=True, help="Cancel an earlier remove (within its 24 hours).")
@pass_app
def did_remove(app: AppContext, dids: tuple[tuple[str, str], ...], undo: bool) -> None:
    """Delete DIDs in 24 hours, with their replicas (Rucio's erase: the lifetime is set to a day)."""
    for did in dids:
        app.client.set_metadata(*did, "lifetime", None if undo else REMOVE_GRACE)
    names = ", ".join(f"{scope}:{name}" for scope, name in dids)
    message = (
        f"kept {names}"
        if undo
        else f"{names} will be deleted in 24 hours; 'datamgmt did remove --undo' cancels it until then"
    )
    app.output.done(message, dids=[f"{scope}:{name}" for scope, name in dids], removed=not undo)


@did_group.command("content")
@click.argument("did", type=DID)
@pass_app
def did_content(app: AppContext, did: tuple[str, str]) -> None:
    """The DIDs directly inside a dataset or container."""
    app.output.table(_did_type_key(app.client.list_content(*did)), CONTENT_COLUMNS)


@did_group.command("files")
@click.argument("did", type=DID)
@pass_app
def did_files(app: AppContext, did: tuple[str, str]) -> None:
    """Every file below a DID, at any depth."""
    app.output.table(app.client.list_files(*did), FILE_COLUMNS)


@did_group.command("parents")
@click.argument("did", type=DID)
@pass_app
def did_parents(app: AppContext, did: tuple[str, str]) -> None:
    """The datasets and containers a DID is attached to."""
    app.output.table(_did_type_key(app.client.list_parents(*did)), PARENT_COLUMNS)


@click.group("replica", cls=Group)
def replica_group() -> None:
    """Where the files are."""


@replica_group.command("list")
@click.argument("dids", nargs=-1, required=True, type=DID)
@click.option("--rses", "rse_expression", help="Only replicas on RSEs matching this expression.")
@click.option("--all-states", is_flag=True, help="Also replicas that are not AVAILABLE.")
@pass_app
def replica_list(
    app: AppContext, dids: tuple[tuple[str, str], ...], rse_expression: str | None, all_states: bool
) -> None:
    """The replicas of files (or of the files of datasets), with their PFNs."""
    replicas = app.client.list_replicas(dids, rse_expression=rse_expression, all_states=all_states)
    if app.output.json:
        app.output.table(replicas, REPLICA_COLUMNS)
        return
    rows = (
        {
            "did": f"{replica['scope']}:{replica['name']}",
            "bytes": replica.get("bytes"),
            "adler32": replica.get("adler32"),
            "rse": info["rse"],
            "state": replica.get("states", {}).get(info["rse"], ""),
            "pfn": pfn,
        }
        for replica in replicas
        for pfn, info in replica.get("pfns", {}).items()
    )
    app.output.table(rows, REPLICA_COLUMNS)


def dataset_replicas(replicas: Iterable[dict[str, Any]], did: tuple[str, str]) -> list[dict[str, Any]]:
    """Per RSE, how much of a dataset is there: Rucio's list-dataset-replicas, summed from the file listing."""
    length, total = 0, 0
    here: dict[str, tuple[int, int]] = {}
    for replica in replicas:
        length, total = length + 1, total + (replica.get("bytes") or 0)
        for rse, state in (replica.get("states") or {}).items():
            files, size = here.get(rse, (0, 0))
            if state == "AVAILABLE":
                here[rse] = (files + 1, size + (replica.get("bytes") or 0))
            else:
                here.setdefault(rse, (files, size))
    return [
        {
            "did": f"{did[0]}:{did[1]}",
            "scope": did[0],
            "name": did[1],
            "rse": rse,
            "length": length,
            "bytes": total,
            "available_length": files,
            "available_bytes": size,
            "state": "AVAILABLE" if files == length else "INCOMPLETE",
        }
        for rse, (files, size) in sorted(here.items())
    ]


@replica_group.command("list-dataset")
@click.argument("did", type=DID)
@pass_app
def replica_list_dataset(app: AppContext, did: tuple[str, str]) -> None:
    """Where a dataset is: per RSE, how many of its files and bytes are there (complete or not)."""
    app.output.table(
        dataset_replicas(app.client.list_replicas([did], all_states=True), did), DATASET_REPLICA_COLUMNS
    )

"""``meta`` commands, and ``publish``/``unpublish`` (shares with minted PIDs)."""

from __future__ import annotations

import json
from typing import Any

import click

from datamgmt.cli.context import DID, AppContext, Command, Group, pass_app
from datamgmt.cli.exist_ok import create, exist_ok_option
from datamgmt.cli.output import Column
from datamgmt.exceptions import Duplicate, KeyNotFound

META_COLUMNS = (Column("key"), Column("value"))


def typed_value(text: str) -> Any:
    """Numbers, booleans and null keep their type (so ``key>3`` filters compare numbers); the rest is text."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if value is None or isinstance(value, (int, float, bool)) else text


@click.group("meta", cls=Group)
def meta_group() -> None:
    """Key-value metadata of DIDs."""


def _parsed(text: str, as_json: bool) -> Any:
    """With --json a list or object is parsed (and must parse); other text is typed as without it."""
    if not as_json or not text.lstrip().startswith(("[", "{")):
        return typed_value(text)
    try:
        return json.loads(text)
    except ValueError as error:
        raise click.BadParameter(f"not JSON: {error}", param_hint="VALUE") from error


@meta_group.command("set")
@click.argument("did", type=DID)
@click.argument("key")
@click.argument("value", required=False)
@click.option(
    "--add",
    "added",
    multiple=True,
    metavar="VALUE",
    help="Append VALUE to the key's list (repeatable); a single value becomes the list's first item.",
)
@click.option("--recursive", is_flag=True, help="Also on everything below a dataset or container.")
@pass_app
def meta_set(
    app: AppContext,
    did: tuple[str, str],
    key: str,
    value: str | None,
    added: tuple[str, ...],
    recursive: bool,
) -> None:
    """Set KEY to VALUE, or append to KEY's list with --add.

    Numbers and true/false are stored typed. With --json, VALUE (and each --add) is a JSON
    document, so a key can hold a list or an object, e.g. several creators:
    creators '[{"name": "Doe, Jane", "affiliation": "CERN", "orcid": "0000-0002-1825-0097"}]'.
    """
    as_json = app.output.json
    if (value is None) == (not added):
        raise click.UsageError("Give either VALUE or at least one --add VALUE")
    if value is not None:
        stored = _parsed(value, as_json)
    else:
        current = app.client.get_metadata(*did).get(key)
        stored = [] if current is None else current if isinstance(current, list) else [current]
        stored += [_parsed(item, as_json) for item in added]
    app.client.set_metadata(*did, key, stored, recursive=recursive)
    shown = json.dumps(stored, ensure_ascii=False) if isinstance(stored, list | dict) else stored
    app.output.done(f"{did[0]}:{did[1]} {key}={shown}", key=key, value=stored)


@meta_group.command("get")
@click.argument("did", type=DID)
@click.argument("key")
@pass_app
def meta_get(app: AppContext, did: tuple[str, str], key: str) -> None:
    """The value of one key."""
    metadata = app.client.get_metadata(*did)
    if key not in metadata:
        raise KeyNotFound(f"{did[0]}:{did[1]} has no metadata key {key!r}")
    value = metadata[key]
    text = (
        json.dumps(value, ensure_ascii=False)
        if isinstance(value, list | dict)
        else ""
        if value is None
        else str(value)
    )
    app.output.done(text, key=key, value=value)


@meta_group.command("list")
@click.argument("did", type=DID)
@pass_app
def meta_list(app: AppContext, did: tuple[str, str]) -> None:
    """All metadata of a DID."""
    metadata = app.client.get_metadata(*did)
    if app.output.json:
        app.output.record(metadata)
    else:
        app.output.table(
            ({"key": key, "value": value} for key, value in sorted(metadata.items())), META_COLUMNS
        )


@click.command("publish", cls=Command)
@click.argument("did", type=DID)
@click.option("--pid-service", help="PID service to mint with [default: the service's default].")
@click.option(
    "--update",
    is_flag=True,
    help="Publish the current files and metadata of a published DID as a "
    "new version of its record (landing page, OAI-PMH and PID service change together).",
)
@exist_ok_option
@pass_app
def publish_command(
    app: AppContext, did: tuple[str, str], pid_service: str | None, update: bool, exist_ok: bool
) -> None:
    """Publish a dataset or container: mint a PID and print it.

    Needs the DataCite properties creator, title and publisher as metadata, and files. What is
    published stays as it was until 'publish --update'.  With --exist-ok, a DID already
    published prints its PID, unchanged.
    """
    if update:
        share = app.client.update_share(*did)
        app.output.done(
            f"{share['pid']} updated, datestamp {share['datestamp']}",
            pid=share["pid"],
            datestamp=share["datestamp"],
        )
        return
    shares: list[dict[str, Any]] = []

    def existing(
        error: Duplicate,
    ) -> str:  # only a PUBLISHED share is a Duplicate: a withdrawn one is published again
        shares.append(app.client.get_share(*did))
        return str(error)

    create(exist_ok, lambda: shares.append(app.client.publish(*did, pid_service=pid_service)), existing)
    share = shares[0]
    landing_page = share.get("landing_page") or share.get("landing_url")
    app.output.done(f"{share['pid']}\n{landing_page}", pid=share["pid"], landing_page=landing_page)


@click.command("unpublish", cls=Command)
@click.argument("did", type=DID)
@pass_app
def unpublish_command(app: AppContext, did: tuple[str, str]) -> None:
    """Withdraw a share; its PID keeps resolving to a tombstone page."""
    app.client.unpublish(*did)
    app.output.done(f"unpublished {did[0]}:{did[1]}", scope=did[0], name=did[1], published=False)

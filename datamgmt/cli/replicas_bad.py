"""``datamgmt replica declare-bad``: tell the catalogue that copies are corrupt or lost."""

from __future__ import annotations

import click

from datamgmt.cli.completion import complete_rse
from datamgmt.cli.context import AppContext, Command, pass_app
from datamgmt.cli.output import Column
from datamgmt.exceptions import InputValidationError

UNDECLARED_COLUMNS = (Column("rse", "RSE"), Column("replica"))


@click.command("declare-bad", cls=Command)
@click.argument("replicas", nargs=-1, required=True)
@click.option(
    "--rse", shell_complete=complete_rse, help="The RSE holding the bad copies, when they are named as DIDs."
)
@click.option("--reason", required=True, help="Why the copies are bad (kept with the declaration).")
@pass_app
def declare_bad_command(app: AppContext, replicas: tuple[str, ...], rse: str | None, reason: str) -> None:
    """Declare copies bad (admins), by PFN or as SCOPE:NAME with --rse: the necromancer copies
    each again from a good replica, or declares the file lost when none is left.  Exits 1 when
    some were not declared."""
    undeclared = app.client.declare_bad_replicas(_replicas(replicas, rse), reason)
    rows = [{"rse": rse_name, "replica": item} for rse_name, items in undeclared.items() for item in items]
    if rows:
        app.output.table(rows, UNDECLARED_COLUMNS, title="not declared")
        click.get_current_context().exit(1)
    app.output.done(f"declared {len(replicas)} replicas bad", declared=len(replicas))


def _replicas(given: tuple[str, ...], rse: str | None) -> list[str] | list[dict[str, str]]:
    """PFNs as they are; DIDs (``SCOPE:NAME``) become replicas on ``--rse``."""
    pfns = ["://" in item for item in given]
    if all(pfns):
        return list(given)
    if any(pfns):
        raise InputValidationError("name the copies either all by PFN or all as SCOPE:NAME with --rse")
    if not rse:
        raise InputValidationError("copies named as SCOPE:NAME need --rse, the RSE that holds them")
    dids = [item.split(":", 1) for item in given]
    if any(len(did) != 2 or not all(did) for did in dids):
        raise InputValidationError("a copy is named SCOPE:NAME (or by its PFN)")
    return [{"scope": scope, "name": name, "rse": rse} for scope, name in dids]

"""``datamgmt replica declare-bad``: tell the catalogue that copies are corrupt or lost."""

from __future__ import annotations

import click

from datamgmt.cli.context import AppContext, Command, pass_app
from datamgmt.cli.output import Column

UNDECLARED_COLUMNS = (Column("rse", "RSE"), Column("replica"))


@click.command("declare-bad", cls=Command)
@click.argument("pfns", nargs=-1, required=True)
@click.option("--reason", required=True, help="Why the copies are bad (kept with the declaration).")
@pass_app
def declare_bad_command(app: AppContext, pfns: tuple[str, ...], reason: str) -> None:
    """Declare the replicas at PFNs bad (admins): the necromancer copies each again from a good
    replica, or declares the file lost when none is left.  Exits 1 when some were not declared."""
    undeclared = app.client.declare_bad_replicas(list(pfns), reason)
    rows = [{"rse": rse, "replica": item} for rse, items in undeclared.items() for item in items]
    if rows:
        app.output.table(rows, UNDECLARED_COLUMNS, title="not declared")
        click.get_current_context().exit(1)
    app.output.record({"declared": len(pfns)})

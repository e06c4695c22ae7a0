"""``datamgmt replica remove``: let the reaper delete copies of my files that nothing protects."""

from __future__ import annotations

import click

from datamgmt.cli.completion import complete_rse
from datamgmt.cli.context import DID, AppContext, Command, pass_app


@click.command("remove", cls=Command)
@click.argument("dids", nargs=-1, required=True, type=DID)
@click.option("--rse", required=True, shell_complete=complete_rse, help="The RSE to remove the copies from.")
@pass_app
def replica_remove_command(app: AppContext, dids: tuple[tuple[str, str], ...], rse: str) -> None:
    """Remove copies of files (SCOPE:NAME) from one RSE: they get a tombstone and the reaper
    deletes them.  Only copies in my own scopes that no rule locks there: otherwise nothing is
    removed and the error names the first copy refused (remove the rule first)."""
    app.client.set_tombstone(rse, dids)
    app.output.done(f"{len(dids)} replicas on {rse} marked for deletion: the reaper removes them",
                    rse=rse, dids=[f"{scope}:{name}" for scope, name in dids], tombstoned=len(dids))

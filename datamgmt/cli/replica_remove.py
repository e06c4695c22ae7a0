"""``datamgmt replica remove``: let the reaper delete copies of my files that nothing protects."""

from __future__ import annotations

import click

from datamgmt.cli.completion import complete_rse
from datamgmt.cli.context import DID, AppContext, Command, pass_app
from datamgmt.client import Client
from datamgmt.exceptions import ReplicaNotFound


@click.command("remove", cls=Command)
@click.argument("dids", nargs=-1, required=True, type=DID)
@click.option("--rse", required=True, shell_complete=complete_rse, help="The RSE to remove the copies from.")
@pass_app
def replica_remove_command(app: AppContext, dids: tuple[tuple[str, str], ...], rse: str) -> None:
    """Remove copies of files, or of a dataset's or container's files, from one RSE: they get a
    tombstone and the reaper deletes them.  Only copies in my own scopes that no rule locks
    there; otherwise nothing is removed and the error names the first copy refused (remove the
    rule first)."""
    files = files_on(app.client, dids, rse)
    app.client.set_tombstone(rse, files)
    app.output.done(
        f"{len(files)} replicas on {rse} marked for deletion: the reaper removes them",
        rse=rse,
        dids=[f"{scope}:{name}" for scope, name in files],
        tombstoned=len(files),
    )


def files_on(client: Client, dids: tuple[tuple[str, str], ...], rse: str) -> list[tuple[str, str]]:
    """The files named, and the files under the collections named that have a copy on ``rse``
    (one listing per collection); a collection with none there is an error, not a no-op."""
    collections = [did for did in dids if client.get_did(*did)["type"] != "FILE"]
    files = [did for did in dids if did not in collections]
    for scope, name in collections:
        found = [
            (row["scope"], row["name"])
            for row in client.list_replicas([(scope, name)], all_states=True)
            if rse in (row.get("states") or {})
        ]
        if not found:
            raise ReplicaNotFound(f"{scope}:{name} has no files on {rse}")
        files.extend(found)
    return list(dict.fromkeys(files))

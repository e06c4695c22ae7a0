"""``upload`` and ``download``."""

from __future__ import annotations

import os

import click

from datamgmt.cli.context import DID, AppContext, Command, pass_app
from datamgmt.cli.output import Column
from datamgmt.cli.progress import show_bars, transfer_progress
from datamgmt.client.downloads import download
from datamgmt.client.transfers import DEFAULT_THREADS
from datamgmt.client.uploads import items_for, upload
from datamgmt.exceptions import DatamgmtError

UPLOAD_COLUMNS = (Column("did", "DID"), Column("rse", "RSE"), Column("bytes", kind="size"), Column("adler32"),
                  Column("status"))
DOWNLOAD_COLUMNS = (Column("did", "DID"), Column("path"), Column("bytes", kind="size"), Column("rse", "from"),
                    Column("status"))

threads_option = click.option("--threads", "-j", type=click.IntRange(1, 256), default=DEFAULT_THREADS,
                              show_default=True, help="Files transferred in parallel.")


def _status(error: DatamgmtError | None) -> str:
    return "ok" if error is None else f"FAILED {error.error_class}: {error.message}"


@click.command("upload", cls=Command)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, readable=True))
@click.option("--rse", required=True, help="RSE to write to.")
@click.option("--scope", required=True, help="Scope of the new files.")
@click.option("--name", help="Catalogue name of the file (one file only; default its basename).")
@click.option("--dataset", type=DID, help="Attach the files to this dataset (created if missing).")
@click.option("--rule", "rule_expression", help="RSE expression of the rule protecting the upload "
              "[default: the upload RSE].")
@click.option("--no-rule", is_flag=True, help="Add no rule (the replicas may be reaped).")
@click.option("--copies", type=click.IntRange(1), default=1, show_default=True)
@click.option("--lifetime", type=click.IntRange(1), help="Rule lifetime in seconds.")
@click.option("--overwrite", is_flag=True, help="Replace a file of the same path on storage.")
@threads_option
@pass_app
def upload_command(app: AppContext, paths: tuple[str, ...], rse: str, scope: str, name: str | None,
                   dataset: tuple[str, str] | None, rule_expression: str | None, no_rule: bool, copies: int,
                   lifetime: int | None, overwrite: bool, threads: int) -> None:
    """Upload files (or the files of directories) to an RSE, verified by checksum, and register them."""
    items = items_for(paths, name)
    total = sum(os.path.getsize(item.path) for item in items)
    with transfer_progress(show_bars(app.output.json), total, len(items)) as progress:
        report = upload(app.client, items, scope, rse, dataset=dataset,
                        rule_expression=None if no_rule else rule_expression or rse, copies=copies,
                        lifetime=lifetime, threads=threads, overwrite=overwrite, progress=progress)
    rows = [{"did": f"{item.scope}:{item.name}", "rse": item.rse, "path": item.path, "pfn": item.pfn,
             "bytes": item.bytes, "adler32": item.adler32, "md5": item.md5, "status": _status(item.error)}
            for item in report.files]
    app.output.table(rows, UPLOAD_COLUMNS)
    if report.rule_ids and not app.output.json:
        click.echo(f"rule: {', '.join(report.rule_ids)}")
    if report.failed:
        raise DatamgmtError(f"{len(report.failed)} of {len(report.files)} files failed to upload")
    if report.rule_error is not None:
        raise report.rule_error


@click.command("download", cls=Command)
@click.argument("dids", nargs=-1, required=True, type=DID)
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Files land in DIR/SCOPE/NAME (a NAME's leading / stays inside DIR); a name that "
              "would leave DIR stops the download before anything is written.")
@click.option("--near", metavar="RSE", help="Prefer replicas closest to this RSE (by the distance matrix).")
@threads_option
@pass_app
def download_command(app: AppContext, dids: tuple[tuple[str, str], ...], directory: str, near: str | None,
                     threads: int) -> None:
    """Download files, datasets or containers; each file is checksum-verified, falling back to other replicas."""
    replicas = list(app.client.list_replicas(dids))
    total = sum(replica.get("bytes") or 0 for replica in replicas)
    with transfer_progress(show_bars(app.output.json), total, len(replicas)) as progress:
        outcomes = download(app.client, replicas, directory, near=near, threads=threads, progress=progress)
    for outcome in outcomes:
        for pfn, message in outcome.fallbacks:
            app.output.warn(f"{outcome.scope}:{outcome.name}: rejected {pfn}: {message}")
    rows = [{"did": f"{item.scope}:{item.name}", "path": item.path, "pfn": item.pfn, "bytes": item.bytes,
             "adler32": item.adler32, "rse": item.rse, "fallbacks": len(item.fallbacks),
             "status": _status(item.error)} for item in outcomes]
    app.output.table(rows, DOWNLOAD_COLUMNS)
    failed = [outcome for outcome in outcomes if outcome.error is not None]
    if failed:
        raise DatamgmtError(f"{len(failed)} of {len(outcomes)} files failed to download")
    if not outcomes:
        raise DatamgmtError("No files matched")

"""``upload`` and ``download``."""

from __future__ import annotations

import json
import os
import random

import click

from datamgmt.cli.completion import complete_rse
from datamgmt.cli.context import DID, AppContext, Command, pass_app
from datamgmt.cli.output import Column
from datamgmt.cli.progress import show_bars, transfer_progress
from datamgmt.client.downloads import DownloadOutcome, download, only_pfn
from datamgmt.client.transfers import DEFAULT_THREADS
from datamgmt.client.uploads import UPLOADED, UploadOutcome, UploadReport, items_for, upload
from datamgmt.exceptions import DatamgmtError

UPLOAD_COLUMNS = (
    Column("did", "DID"),
    Column("rse", "RSE"),
    Column("bytes", kind="size"),
    Column("adler32"),
    Column("status"),
)
DOWNLOAD_COLUMNS = (
    Column("did", "DID"),
    Column("path"),
    Column("bytes", kind="size"),
    Column("rse", "from"),
    Column("status"),
)

threads_option = click.option(
    "--threads",
    "-j",
    type=click.IntRange(1, 256),
    default=DEFAULT_THREADS,
    show_default=True,
    help="Files transferred in parallel.",
)


def _status(item: UploadOutcome | DownloadOutcome) -> str:
    """``ok`` (``ok: already there`` for a file an upload skipped), or the failure in one line."""
    if item.error is not None:
        return f"FAILED {item.error.error_class}: {item.error.message}"
    return "ok" if getattr(item, "status", "") in ("", UPLOADED) else f"ok: {item.status}"


SUMMARY_FILE = "datamgmt_upload.json"


def _write_summary(report: UploadReport) -> None:
    """Rucio's ``--summary``: one entry per uploaded file, keyed by DID, in the working directory."""
    summary = {
        f"{item.scope}:{item.name}": {
            "scope": item.scope,
            "name": item.name,
            "rse": item.rse,
            "pfn": item.pfn,
            "bytes": item.bytes,
            "adler32": item.adler32,
            "md5": item.md5,
            "guid": item.guid,
            "status": item.status,
        }
        for item in report.files
        if item.error is None
    }
    with open(SUMMARY_FILE, "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2, sort_keys=True)


@click.command("upload", cls=Command)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, readable=True))
@click.option("--rse", required=True, shell_complete=complete_rse, help="RSE to write to.")
@click.option("--scope", required=True, help="Scope of the new files.")
@click.option("--name", help="Catalogue name of the file (one file only; default its basename).")
@click.option("--guid", help="GUID of the file (one file only; default a random one).")
@click.option("--recursive", "-r", is_flag=True, help="Also the files in sub-directories of a directory.")
@click.option(
    "--keep-paths",
    is_flag=True,
    help="Name files by their path relative to the directory given "
    "(e.g. run1/file.root) instead of their basename.",
)
@click.option("--dataset", type=DID, help="Attach the files to this dataset (created if missing).")
@click.option(
    "--rule",
    "rule_expression",
    help="RSE expression of the rule protecting the upload [default: the upload RSE].",
)
@click.option("--no-rule", is_flag=True, help="Add no rule (the replicas may be reaped).")
@click.option("--copies", type=click.IntRange(1), default=1, show_default=True)
@click.option("--lifetime", type=click.IntRange(1), help="Rule lifetime in seconds.")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Write the files again even where storage or the catalogue "
    "already holds them with the same checksum.",
)
@click.option(
    "--register-after-upload",
    is_flag=True,
    help="Register only the files that arrived, after "
    "writing (default: register as COPYING first, so an interrupted upload can be resumed).",
)
@click.option("--summary", is_flag=True, help=f"Write {SUMMARY_FILE} (DID, PFN, checksums, GUID) here.")
@threads_option
@pass_app
def upload_command(
    app: AppContext,
    paths: tuple[str, ...],
    rse: str,
    scope: str,
    name: str | None,
    guid: str | None,
    recursive: bool,
    keep_paths: bool,
    dataset: tuple[str, str] | None,
    rule_expression: str | None,
    no_rule: bool,
    copies: int,
    lifetime: int | None,
    overwrite: bool,
    register_after_upload: bool,
    summary: bool,
    threads: int,
) -> None:
    """Upload files (or the files of directories) to an RSE, verified by checksum, register them and add a rule.

    Quota and permission are checked before anything is written. Running the same command
    again skips the files already there with the same checksum and completes the others,
    including those of an interrupted run.
    """
    items = items_for(paths, name, recursive=recursive, keep_paths=keep_paths, guid=guid)
    if not items:
        hint = "" if recursive else " (sub-directories need --recursive)"
        raise DatamgmtError(f"No files to upload in {', '.join(paths)}{hint}")
    total = sum(os.path.getsize(item.path) for item in items)
    with transfer_progress(show_bars(app.output.json), total, len(items)) as progress:
        report = upload(
            app.client,
            items,
            scope,
            rse,
            dataset=dataset,
            rule_expression=None if no_rule else rule_expression or rse,
            copies=copies,
            lifetime=lifetime,
            threads=threads,
            overwrite=overwrite,
            register_after_upload=register_after_upload,
            progress=progress,
        )
    rule_id = ", ".join(report.rule_ids or []) or None
    rows = [
        {
            "did": f"{item.scope}:{item.name}",
            "rse": item.rse,
            "path": item.path,
            "pfn": item.pfn,
            "bytes": item.bytes,
            "adler32": item.adler32,
            "md5": item.md5,
            "guid": item.guid,
            "rule_id": rule_id,
            "status": _status(item),
        }
        for item in report.files
    ]
    app.output.table(rows, UPLOAD_COLUMNS)
    if summary:
        _write_summary(report)
    if rule_id and not app.output.json:
        click.echo(f"rule: {rule_id}")
    if report.failed:
        raise DatamgmtError(f"{len(report.failed)} of {len(report.files)} files failed to upload")
    if report.rule_error is not None:
        raise report.rule_error


@click.command("download", cls=Command)
@click.argument("dids", nargs=-1, required=True, type=DID)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="Files land in DIR/SCOPE/NAME (a NAME's leading / stays inside DIR); a name that "
    "would leave DIR stops the download before anything is written.",
)
@click.option("--no-subdir", is_flag=True, help="Files land in DIR/NAME, without the SCOPE directory.")
@click.option(
    "--near",
    metavar="RSE",
    shell_complete=complete_rse,
    help="Prefer replicas closest to this RSE (by the distance matrix).",
)
@click.option("--rses", "rse_expression", help="Only read replicas on RSEs matching this expression.")
@click.option(
    "--nrandom", type=click.IntRange(1), help="Only N files chosen at random among those of the DIDs."
)
@click.option("--pfn", help="Read the one file of DIDS from this PFN only.")
@click.option(
    "--filter",
    "filters",
    help="DIDS are SCOPE:PATTERN wildcards; download those whose metadata "
    "matches, e.g. 'run>3,type=DATASET' (as 'did search').",
)
@threads_option
@pass_app
def download_command(
    app: AppContext,
    dids: tuple[tuple[str, str], ...],
    directory: str,
    no_subdir: bool,
    near: str | None,
    rse_expression: str | None,
    nrandom: int | None,
    pfn: str | None,
    filters: str | None,
    threads: int,
) -> None:
    """Download files, datasets or containers; each file is checksum-verified, falling back to other replicas."""
    if filters:
        dids = tuple(
            (row["scope"], row["name"])
            for scope, pattern in dids
            for row in app.client.search_dids(scope, filters, name=pattern)
        )
        if not dids:
            raise DatamgmtError(f"No DIDs match the filter {filters!r}")
    replicas = list(app.client.list_replicas(dids, rse_expression=rse_expression))
    if pfn:
        replicas = only_pfn(replicas, pfn)
    if nrandom is not None and nrandom < len(replicas):
        replicas = random.sample(replicas, nrandom)
    total = sum(replica.get("bytes") or 0 for replica in replicas)
    with transfer_progress(show_bars(app.output.json), total, len(replicas)) as progress:
        outcomes = download(
            app.client,
            replicas,
            directory,
            near=near,
            threads=threads,
            progress=progress,
            subdir=not no_subdir,
        )
    for outcome in outcomes:
        for rejected, message in outcome.fallbacks:
            app.output.warn(f"{outcome.scope}:{outcome.name}: rejected {rejected}: {message}")
    rows = [
        {
            "did": f"{item.scope}:{item.name}",
            "path": item.path,
            "pfn": item.pfn,
            "bytes": item.bytes,
            "adler32": item.adler32,
            "rse": item.rse,
            "fallbacks": len(item.fallbacks),
            "status": _status(item),
        }
        for item in outcomes
    ]
    app.output.table(rows, DOWNLOAD_COLUMNS)
    failed = [outcome for outcome in outcomes if outcome.error is not None]
    if failed:
        raise DatamgmtError(f"{len(failed)} of {len(outcomes)} files failed to download")
    if not outcomes:
        raise DatamgmtError("No files matched")

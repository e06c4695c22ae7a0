"""Upload local files to an RSE and register them, safely against quota, interruption and reruns.

The order is what makes an upload safe to stop and repeat:

1. local checksums, and what the catalogue has already (a rerun finds its own earlier work);
2. the rule's RSEs and the account's quota are checked for the bytes still to come, so a refusal
   comes before a byte is written (the server would refuse only the rule, afterwards);
3. new files are registered as COPYING replicas (Rucio's order: the server checks permission
   here, and an interrupted upload leaves a record to resume, never unregistered bytes);
4. each file goes to a temporary name derived from its checksum, is verified on storage and
   renamed (``datamgmt.rse.upload``); a rerun overwrites a killed attempt's temporary;
5. written files become AVAILABLE; then the dataset and the rule, reused when they exist.

A rerun skips files AVAILABLE with the same checksum, completes COPYING ones (without writing
again when the storage holds them whole already), and refuses a name registered with another
checksum. ``register_after_upload`` is Rucio's option to register only what arrived.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from datamgmt.client.quota import require_quota
from datamgmt.client.transfers import DEFAULT_THREADS, NullProgress, ProgressSink, ProtocolPool, run_parallel
from datamgmt.client.upload_catalogue import (
    CatalogueFile,
    attach,
    ensure_rule,
    existing_files,
    register,
    replica_record,
    set_available,
)
from datamgmt.exceptions import DatamgmtError, FileConsistencyMismatch, InsufficientTargetRSEs
from datamgmt.rse.checksum import FileChecksums, checksums_equal, file_checksums
from datamgmt.rse.protocols import select_protocol
from datamgmt.rse.upload import TEMPORARY_MARKER, upload_file, verify_stored

if TYPE_CHECKING:
    from datamgmt.client.client import Client

#: Outcome statuses besides a failure.
UPLOADED, SKIPPED, COMPLETED = "uploaded", "already there", "completed on storage"


@dataclass
class UploadItem:
    """One local file, the name it gets in the catalogue, and optionally its GUID."""

    path: str
    name: str
    guid: str | None = None


@dataclass
class UploadOutcome:
    path: str
    scope: str
    name: str
    rse: str
    pfn: str | None = None
    bytes: int | None = None
    adler32: str | None = None
    md5: str | None = None
    guid: str | None = None
    status: str = ""
    error: DatamgmtError | None = None


@dataclass
class UploadReport:
    files: list[UploadOutcome]
    dataset: str | None = None
    rule_ids: list[str] | None = None
    #: The files are on storage and registered even when their rule could not be made.
    rule_error: DatamgmtError | None = None

    @property
    def failed(self) -> list[UploadOutcome]:
        return [outcome for outcome in self.files if outcome.error is not None]


class UploadInterrupted(DatamgmtError):
    """Ctrl-C during the writes: what arrived is registered, the rest waits as COPYING for a rerun."""


def _walk(directory: str, recursive: bool, keep_paths: bool) -> list[UploadItem]:
    items = []
    for root, subdirectories, files in os.walk(directory):
        subdirectories[:] = sorted(
            entry for entry in subdirectories if recursive and not entry.startswith(".")
        )
        for entry in sorted(files):
            if not entry.startswith("."):
                path = os.path.join(root, entry)
                name = os.path.relpath(path, directory).replace(os.sep, "/") if keep_paths else entry
                items.append(UploadItem(path, name))
    return items


def items_for(
    paths: Sequence[str],
    name: str | None = None,
    *,
    recursive: bool = False,
    keep_paths: bool = False,
    guid: str | None = None,
) -> list[UploadItem]:
    """Local files named by their basename (or relative path with ``keep_paths``), hidden files skipped.

    A directory gives its files; with ``recursive`` those of its sub-directories too. Two files
    that would get the same name are refused before anything happens.
    """
    items = []
    for path in paths:
        if os.path.isdir(path):
            items.extend(_walk(path, recursive, keep_paths))
        else:
            items.append(UploadItem(path, os.path.basename(path)))
    if (name is not None or guid is not None) and len(items) != 1:
        raise DatamgmtError(f"--name and --guid need exactly one file, not {len(items)}")
    if name is not None:
        items[0].name = name
    if guid is not None:
        items[0].guid = guid
    seen: dict[str, str] = {}
    for item in items:
        if item.name in seen:
            raise DatamgmtError(
                f"{seen[item.name]} and {item.path} would both be named {item.name}: "
                "use --keep-paths, or upload them separately"
            )
        seen[item.name] = item.path
    return items


def _rule_rses(client: Client, rule_expression: str, copies: int) -> list[str]:
    rses = [row["rse"] for row in client.list_rses(rule_expression)]
    if len(rses) < copies:
        raise InsufficientTargetRSEs(
            f"The rule needs {copies} RSEs, {rule_expression!r} matches {len(rses)}"
            + (f" ({', '.join(rses)})" if rses else "")
        )
    return rses


def _same_file(entry: CatalogueFile, local: FileChecksums) -> bool:
    return entry.bytes == local.size and (
        (entry.adler32 is not None and checksums_equal(entry.adler32, local.adler32))
        or (entry.adler32 is None and entry.md5 is not None and checksums_equal(entry.md5, local.md5))
    )


def upload(
    client: Client,
    items: Sequence[UploadItem],
    scope: str,
    rse: str,
    *,
    dataset: tuple[str, str] | None = None,
    rule_expression: str | None = None,
    copies: int = 1,
    lifetime: int | None = None,
    threads: int = DEFAULT_THREADS,
    overwrite: bool = False,
    register_after_upload: bool = False,
    progress: ProgressSink | None = None,
) -> UploadReport:
    """Upload ``items`` to ``rse`` under ``scope``; a failed file never stops the others.

    With ``dataset`` the files are attached to it (created if missing). With ``rule_expression``
    a rule is added on the dataset, or on each file when there is none. Quota and rule RSEs
    are checked first: InsufficientAccountLimit or InsufficientTargetRSEs before any write.
    """
    progress = progress or NullProgress()
    info = client.get_rse(rse)
    record = select_protocol(info.get("protocols", []), "write", "wan")
    algorithm = info.get("lfn2pfn_algorithm") or "hash"
    verify = info.get("verify_checksum", True) is not False
    pool = ProtocolPool()

    sums = dict(
        zip(
            (item.name for item in items),
            run_parallel(lambda item: file_checksums(item.path), items, threads),
            strict=True,
        )
    )
    known = existing_files(client, scope, [item.name for item in items])
    outcomes = {
        item.name: UploadOutcome(
            item.path,
            scope,
            item.name,
            rse,
            bytes=sums[item.name].size,
            adler32=sums[item.name].adler32,
            md5=sums[item.name].md5,
            guid=item.guid,
        )
        for item in items
    }
    to_write: list[UploadItem] = []
    for item in items:
        entry, outcome = known.get(item.name), outcomes[item.name]
        if entry is not None and not _same_file(entry, sums[item.name]):
            outcome.error = FileConsistencyMismatch(
                f"{scope}:{item.name} is registered with {entry.bytes} bytes, adler32 {entry.adler32}; the local "
                f"file has {outcome.bytes} bytes, adler32 {outcome.adler32}: choose another name"
            )
        elif entry is not None and entry.states.get(rse) == "AVAILABLE" and not overwrite:
            outcome.status = SKIPPED
        else:
            to_write.append(item)

    def state_here(name: str) -> str | None:
        entry = known.get(name)
        return entry.states.get(rse) if entry is not None else None

    pending = [item for item in to_write if state_here(item.name) != "AVAILABLE"]
    if rule_expression:
        rses = _rule_rses(client, rule_expression, copies)
        require_quota(
            client,
            client.account,
            rses,
            sum(sums[item.name].size for item in pending),
            copies,
            what=f"Uploading {len(pending)} files",
        )
    new = [item for item in pending if state_here(item.name) is None]
    registered_first = not register_after_upload
    if registered_first:
        register(
            client,
            rse,
            [
                replica_record(
                    scope,
                    item.name,
                    outcomes[item.name].bytes or 0,
                    outcomes[item.name].adler32 or "",
                    outcomes[item.name].md5 or "",
                    "C",
                    item.guid,
                )
                for item in new
            ],
        )

    arrived: list[UploadOutcome] = []

    def one(item: UploadItem) -> UploadOutcome:
        outcome, local = outcomes[item.name], sums[item.name]
        progress.file_started(item.name, local.size)
        # An earlier attempt registered it here: what the storage holds under its name is ours.
        resumable = state_here(item.name) is not None
        try:
            protocol = pool.get(record, algorithm)
            pfn = protocol.lfns2pfns([{"scope": scope, "name": item.name}])[f"{scope}:{item.name}"]
            outcome.pfn = pfn
            if resumable and not overwrite and protocol.exists(pfn):
                try:
                    verify_stored(protocol, pfn, local, verify)
                    outcome.status = COMPLETED
                except DatamgmtError:
                    resumable = True  # a partial or stale file of an earlier attempt: replace it
            if outcome.status != COMPLETED:
                callback = lambda done: progress.file_advanced(item.name, done)  # noqa: E731
                upload_file(
                    protocol,
                    item.path,
                    pfn,
                    size=local.size,
                    adler32=local.adler32,
                    overwrite=overwrite or resumable,
                    verify_checksum=verify,
                    progress_callback=callback,
                    temporary=f"{pfn}{TEMPORARY_MARKER}{local.adler32}" if registered_first else None,
                )
                outcome.status = UPLOADED
        except DatamgmtError as error:
            outcome.error = error
        else:
            arrived.append(outcome)  # list.append is atomic: the workers share this list
        progress.file_finished(item.name, outcome.error is None)
        return outcome

    def record_arrivals() -> None:
        if registered_first:
            set_available(client, rse, scope, [outcome.name for outcome in arrived])
            return
        register(
            client,
            rse,
            [
                replica_record(
                    scope,
                    outcome.name,
                    outcome.bytes or 0,
                    outcome.adler32 or "",
                    outcome.md5 or "",
                    "A",
                    outcome.guid,
                )
                for outcome in arrived
                if state_here(outcome.name) is None
            ],
        )
        set_available(client, rse, scope, [outcome.name for outcome in arrived if state_here(outcome.name)])

    try:
        for _ in run_parallel(one, to_write, threads):
            pass
    except KeyboardInterrupt:
        # run_parallel let the files in flight finish: every one that arrived is registered.
        record_arrivals()
        rest = "stay COPYING" if registered_first else "were not written"
        raise UploadInterrupted(
            f"Interrupted: {len(arrived)} of {len(to_write)} files uploaded and registered; the others {rest}: "
            "run the same command again to finish"
        ) from None
    record_arrivals()
    report = UploadReport([outcomes[item.name] for item in items])
    present = [(scope, outcome.name) for outcome in report.files if outcome.error is None]
    if dataset and present:
        attach(client, dataset, present)
        report.dataset = f"{dataset[0]}:{dataset[1]}"
    if rule_expression and present:
        try:
            report.rule_ids = ensure_rule(
                client, [dataset] if dataset else present, copies, rule_expression, lifetime
            )
        except DatamgmtError as error:
            report.rule_error = error
    return report

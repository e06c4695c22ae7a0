"""Upload local files to an RSE and register them, in parallel.

Each file is checksummed locally, written through the RSE's preferred write protocol to a
temporary name, verified on storage and renamed into place (``datamgmt.rse.upload``). Only the
files that arrived whole are registered, in bulk; they can then be attached to a dataset and
protected by a rule.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from datamgmt.client.transfers import DEFAULT_THREADS, NullProgress, ProgressSink, ProtocolPool, run_parallel
from datamgmt.exceptions import DataIdentifierAlreadyExists, DatamgmtError
from datamgmt.rse.protocols import select_protocol
from datamgmt.rse.upload import upload_file

if TYPE_CHECKING:
    from datamgmt.client.client import Client

#: Files per registration call: SQLite refuses much larger statements (docs/rucio-compatibility.md).
REGISTER_CHUNK = 500


@dataclass
class UploadItem:
    """One local file and the name it gets in the catalogue."""

    path: str
    name: str


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


def items_for(paths: Sequence[str], name: str | None = None) -> list[UploadItem]:
    """Local files (directories expanded one level, hidden files skipped) named by their basename."""
    items = []
    for path in paths:
        if os.path.isdir(path):
            items.extend(
                UploadItem(os.path.join(path, entry), entry)
                for entry in sorted(os.listdir(path))
                if not entry.startswith(".") and os.path.isfile(os.path.join(path, entry))
            )
        else:
            items.append(UploadItem(path, os.path.basename(path)))
    if name is not None:
        if len(items) != 1:
            raise DatamgmtError("--name needs exactly one file")
        items[0].name = name
    return items


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
    progress: ProgressSink | None = None,
) -> UploadReport:
    """Upload ``items`` to ``rse`` under ``scope``; a failed file never stops the others.

    With ``dataset`` the uploaded files are attached to it (created if missing). With
    ``rule_expression`` a rule is added on the dataset, or on each file when there is none.
    """
    progress = progress or NullProgress()
    info = client.get_rse(rse)
    record = select_protocol(info.get("protocols", []), "write", "wan")
    algorithm = info.get("lfn2pfn_algorithm") or "hash"
    verify = info.get("verify_checksum", True) is not False
    pool = ProtocolPool()

    def one(item: UploadItem) -> UploadOutcome:
        outcome = UploadOutcome(item.path, scope, item.name, rse)
        size = os.path.getsize(item.path)
        progress.file_started(item.name, size)
        try:
            protocol = pool.get(record, algorithm)
            pfn = protocol.lfns2pfns([{"scope": scope, "name": item.name}])[f"{scope}:{item.name}"]
            callback = lambda done: progress.file_advanced(item.name, done)  # noqa: E731
            result = upload_file(
                protocol, item.path, pfn, overwrite=overwrite, verify_checksum=verify, progress_callback=callback
            )
            outcome.pfn, outcome.bytes, outcome.adler32, outcome.md5 = result.pfn, result.size, result.adler32, result.md5
        except DatamgmtError as error:
            outcome.error = error
        progress.file_finished(item.name, outcome.error is None)
        return outcome

    outcomes = list(run_parallel(one, items, threads))
    done = [outcome for outcome in outcomes if outcome.error is None]
    _register(client, rse, done)
    report = UploadReport(outcomes)
    if dataset and done:
        _attach(client, dataset, done)
        report.dataset = f"{dataset[0]}:{dataset[1]}"
    if rule_expression and done:
        targets = [dataset] if dataset else [(outcome.scope, outcome.name) for outcome in done]
        try:
            report.rule_ids = client.add_rule(targets, copies, rule_expression, lifetime=lifetime)
        except DatamgmtError as error:
            report.rule_error = error
    return report


def _register(client: Client, rse: str, done: list[UploadOutcome]) -> None:
    for start in range(0, len(done), REGISTER_CHUNK):
        files: list[dict[str, Any]] = [
            {
                "scope": outcome.scope,
                "name": outcome.name,
                "bytes": outcome.bytes,
                "adler32": outcome.adler32,
                "md5": outcome.md5,
                "meta": {"guid": uuid.uuid4().hex},
                "state": "A",
            }
            for outcome in done[start : start + REGISTER_CHUNK]
        ]
        client.add_replicas(rse, files)


def _attach(client: Client, dataset: tuple[str, str], done: list[UploadOutcome]) -> None:
    """Attach what is not attached yet: a second replica of a file is already in the dataset."""
    attached: set[tuple[str, str]] = set()
    try:
        client.add_did(dataset[0], dataset[1], "DATASET")
    except DataIdentifierAlreadyExists:
        attached = {(child["scope"], child["name"]) for child in client.list_content(*dataset)}
    missing = [(outcome.scope, outcome.name) for outcome in done if (outcome.scope, outcome.name) not in attached]
    for start in range(0, len(missing), REGISTER_CHUNK):
        client.attach(*dataset, missing[start : start + REGISTER_CHUNK])

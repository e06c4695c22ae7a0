"""OAI-PMH ListRecords throughput from the catalogue: a full harvest of published shares.

The same harvest loop as ``bench/oaipmh.py`` (through the WSGI app, following resumption
tokens) over :class:`~datamgmt.core.oai_repository.CatalogueRepository`, so the figure
includes the keyset query per page, decoding the shares' record snapshots, and
serialization.  Shares are loaded with bulk INSERTs, their snapshots taken by the code
publishing uses (:func:`~datamgmt.core.pid.snapshot`): publishing itself is not measured.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import arguments, fresh_catalogue, report
from bench.oaipmh import harvest
from datamgmt.core.bootstrap import bootstrap
from datamgmt.core.db.constants import DIDType, ShareState
from datamgmt.core.db.models import Content, DataIdentifier, DIDMeta, Scope, Share
from datamgmt.core.db.session import transaction
from datamgmt.core.oai_repository import CatalogueRepository
from datamgmt.core.pid import share_records, snapshot
from datamgmt.publishing.oai import METADATA_FORMATS

T0 = datetime(2024, 1, 1)
BATCH = 10_000


def load(url: str, size: int) -> None:
    """``size`` datasets of one file each, with descriptive metadata, all published locally; 1% withdrawn."""
    with transaction(url) as session:
        bootstrap(session, "root", "bench-password", "21.T99999")
        session.execute(insert(Scope), [{"scope": f"user.u{i}", "account": "root"} for i in range(20)])
    for start in range(0, size, BATCH):
        indexes = range(start, min(size, start + BATCH))
        with transaction(url) as session:
            dids, contents, meta, shares = [], [], [], []
            for i in indexes:
                scope, name, file = f"user.u{i % 20}", f"dataset.{i}", f"file.{i}.root"
                dids.append({"scope": scope, "name": name, "account": "root", "did_type": DIDType.DATASET})
                dids.append(
                    {
                        "scope": scope,
                        "name": file,
                        "account": "root",
                        "did_type": DIDType.FILE,
                        "bytes": 1_000_000,
                        "adler32": "0a0b0c0d",
                    }
                )
                contents.append(
                    {
                        "scope": scope,
                        "name": name,
                        "child_scope": scope,
                        "child_name": file,
                        "did_type": DIDType.DATASET,
                        "child_type": DIDType.FILE,
                        "bytes": 1_000_000,
                        "adler32": "0a0b0c0d",
                    }
                )
                for key, value in (
                    ("title", f"Benchmark dataset {i}"),
                    ("creator", "Doe, Jane; Roe, Richard"),
                    ("subject", "physics"),
                    ("rights", "CC-BY-4.0"),
                    ("publisher", "Example Lab"),
                ):
                    meta.append(
                        {"scope": scope, "name": name, "key": key, "value_type": "str", "value_str": value}
                    )
                withdrawn = i % 100 == 99
                shares.append(
                    {
                        "id": f"{i:032x}",
                        "scope": scope,
                        "name": name,
                        "pid": f"21.T99999/b{i}",
                        "pid_service": "local",
                        "landing_url": f"https://data.example.org/pid/21.T99999/b{i}",
                        "account": "root",
                        "state": ShareState.WITHDRAWN if withdrawn else ShareState.PUBLISHED,
                        "datestamp": T0 + timedelta(seconds=i),
                        "withdrawn_at": T0 if withdrawn else None,
                    }
                )
            for model, rows in ((DataIdentifier, dids), (Content, contents), (DIDMeta, meta)):
                session.execute(insert(model), rows)
            records = share_records(session, [Share(**share) for share in shares])
            session.execute(
                insert(Share),
                [
                    {**share, "record": snapshot(record)}
                    for share, record in zip(shares, records, strict=True)
                ],
            )


def main() -> None:
    args = arguments(__doc__ or "", {"size": 100_000, "page_size": 100}, {"size": 5_000, "page_size": 100})
    url = fresh_catalogue(args.db)
    start = time.perf_counter()
    load(url, args.size)
    report("oaipmh_catalogue_load", args.size, time.perf_counter() - start)
    repository = CatalogueRepository(url)
    for prefix in METADATA_FORMATS:
        start = time.perf_counter()
        received = harvest(repository, prefix, args.page_size)
        if received != args.size:
            raise SystemExit(f"harvested {received} records, expected {args.size}")
        report(f"oaipmh_catalogue_listrecords_{prefix}", args.size, time.perf_counter() - start)


if __name__ == "__main__":
    main()

"""OAI-PMH ListRecords throughput: a full harvest following resumption tokens.

Prints ``name size seconds rate peak_rss`` (rate in records/s, peak_rss in MiB).  The
repository is built by ``make_repository``: swap it for the catalogue-backed one to
measure the database path with the same harvest loop.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import time
from datetime import UTC, datetime, timedelta

from flask import Flask

from datamgmt.api.oaipmh import make_oaipmh_blueprint
from datamgmt.publishing.memory import MemoryRepository
from datamgmt.publishing.oai import METADATA_FORMATS
from datamgmt.publishing.records import FileEntry, ShareRecord, pid_service_set_spec, scope_set_spec
from datamgmt.publishing.repository import Repository, RepositoryInfo

_TOKEN = re.compile(rb"<resumptionToken[^>]*>([^<]+)</resumptionToken>")
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def make_repository(size: int) -> Repository:
    """``size`` published shares spread over 20 scopes and the three PID service kinds, 1% deleted."""
    services = (("doi", "datacite"), ("handle", "handle"), ("local", "local"))
    records = []
    for index in range(size):
        pid_type, service = services[index % 3]
        scope = f"user.u{index % 20}"
        records.append(
            ShareRecord(
                share_id=f"{index:08d}",
                scope=scope,
                name=f"dataset.{index}",
                did_type="DATASET",
                pid=f"10.5072/b{index}",
                pid_type=pid_type,
                pid_service=service,
                landing_url=f"https://data.example.org/share/{index:08d}",
                datestamp=T0 + timedelta(seconds=index),
                deleted=index % 100 == 99,
                metadata={
                    "title": f"Benchmark dataset {index}",
                    "creators": ["Doe, Jane", "Roe, Richard"],
                    "subjects": ["physics"],
                    "description": "A dataset made for the OAI-PMH benchmark & nothing else.",
                    "rights": "CC-BY-4.0",
                    "publisher": "Example Lab",
                },
                files=[FileEntry(f"f{index}.root", 1_000_000, "0a0b0c0d")],
                sets=[scope_set_spec(scope), pid_service_set_spec(service)],
            )
        )
    info = RepositoryInfo("Benchmark", "data.example.org", ("oai@example.org",), T0)
    return MemoryRepository(info, records)


def harvest(repository: Repository, prefix: str, page_size: int) -> int:
    """Harvest ListRecords to the end through the WSGI app; return the records received."""
    # The endpoint answers only behind a configured base URL (never the request's Host header).
    os.environ.setdefault("DATAMGMT_API_BASE_URL", "https://data.example.org")
    app = Flask(__name__)
    app.register_blueprint(
        make_oaipmh_blueprint(repository, secret=b"bench-secret-0123456789", page_size=page_size)
    )
    client = app.test_client()
    query: dict[str, str] = {"verb": "ListRecords", "metadataPrefix": prefix}
    received = 0
    while True:
        body = client.get("/oai_pmh", query_string=query).data
        received += body.count(b"<record ")
        match = _TOKEN.search(body)
        if match is None:
            return received
        query = {"verb": "ListRecords", "resumptionToken": match.group(1).decode()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10^4 records instead of 10^5 (CI)")
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args()
    size = 10_000 if args.quick else 100_000
    repository = make_repository(size)
    print("name size seconds rate peak_rss")
    for prefix in METADATA_FORMATS:
        start = time.perf_counter()
        received = harvest(repository, prefix, args.page_size)
        seconds = time.perf_counter() - start
        if received != size:
            raise SystemExit(f"harvested {received} records, expected {size}")
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"oaipmh_listrecords_{prefix} {size} {seconds:.2f} {received / seconds:.0f} {peak_mib:.0f}")


if __name__ == "__main__":
    main()

"""A catalogue with published-ready DIDs, the Handle and DataCite doubles, and an API app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask, g

from datamgmt.api.errors import register_error_handlers
from datamgmt.api.v1.publishing import bp
from datamgmt.core import did, did_content, metadata, replica, rse, scope
from tests.pid_doubles.datacite_server import DataCiteStore, make_datacite_app
from tests.pid_doubles.handle_server import HandleStore, make_handle_app
from tests.serving import serve

HANDLE_PREFIX = "21.T11148"
HANDLE_USER = f"300:{HANDLE_PREFIX}/USER01"
DOI_PREFIX = "10.5072"
BASE = "https://data.example.org"
META = {
    "title": "Calibration run 7 <raw> & more",
    "creator": "Doe, Jane; Roe, Richard",
    "subject": "physics; detectors",
    "description": "Raw detector data",
    "publisher": "Example Lab",
    "rights": "CC-BY-4.0",
    "date": "2024-05-01",
    "publication_year": 2024,
}


@pytest.fixture(scope="module")
def handle_server() -> Iterator[tuple[str, HandleStore]]:
    store = HandleStore()
    with serve(make_handle_app({HANDLE_PREFIX}, {HANDLE_USER: "secret"}, store)) as url:
        yield url, store


@pytest.fixture(scope="module")
def datacite_server() -> Iterator[tuple[str, DataCiteStore]]:
    store = DataCiteStore()
    with serve(make_datacite_app({"EXAMPLE.DATA": ("pw", {DOI_PREFIX})}, store)) as url:
        yield url, store


def add_dataset(session, name: str, files: int = 2, meta: dict | None = None) -> None:
    did.add_collection(session, "data", name, "DATASET", "root")
    entries = [
        {"scope": "data", "name": f"{name}.f{i}", "bytes": 100 + i, "adler32": f"{i:08x}"}
        for i in range(files)
    ]
    replica.add_replicas(session, "SITE-A", entries, "root")
    did_content.attach(session, "data", name, [{"scope": "data", "name": e["name"]} for e in entries])
    metadata.set_metadata_bulk(session, "data", name, meta if meta is not None else META)


@pytest.fixture
def catalogue(session, root, handle_server, datacite_server):
    from datamgmt.core import pid

    scope.add_scope(session, "data", "root")
    rse.add_rse(session, "SITE-A")
    add_dataset(session, "ds1")
    add_dataset(session, "ds2", files=1)
    did.add_collection(session, "data", "box", "CONTAINER", "root")
    did_content.attach(
        session, "data", "box", [{"scope": "data", "name": "ds1"}, {"scope": "data", "name": "ds2"}]
    )
    pid.add_pid_service(
        session,
        "hdl",
        "handle",
        HANDLE_PREFIX,
        endpoint=handle_server[0],
        username=HANDLE_USER,
        secret="secret",
    )
    pid.add_pid_service(
        session,
        "dc",
        "datacite",
        DOI_PREFIX,
        endpoint=datacite_server[0],
        username="EXAMPLE.DATA",
        secret="pw",
    )
    session.commit()
    return session


@pytest.fixture
def api(db) -> Flask:
    """The publishing blueprint with the issuer fixed to root (authentication is the app's concern)."""
    app = Flask(__name__)
    app.config["DATABASE_URL"] = db
    register_error_handlers(app)
    app.before_request(lambda: setattr(g, "issuer", "root"))
    app.register_blueprint(bp)
    return app

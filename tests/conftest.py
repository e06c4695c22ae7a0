"""Shared fixtures: a migrated catalogue on SQLite, or on PostgreSQL when
``DATAMGMT_TEST_DB_URL`` points at one, cleaned between tests.

Every test that used the catalogue is held to its invariants: after the test, the
checker of :mod:`datamgmt.core.invariants` runs on what the test committed, and any
violation fails the test (at teardown, with the report).  A test that damages the
catalogue on purpose says so with ``@pytest.mark.corrupts_catalogue("invariant", ...)``,
naming the invariants it breaks (no names: the check is skipped altogether).
``DATAMGMT_TEST_CHECK=report`` only prints the reports, ``off`` skips the check.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from datamgmt.config import reset_config
from datamgmt.core.db.models import Base
from datamgmt.core.db.session import dispose_engines, get_engine, session_factory
from tests.servers.endpoints import fail_fast_on_closed_ports

fail_fast_on_closed_ports()
# Every API test bootstraps root with a password and most log in: at the production scrypt
# cost (2**17, ~1.3 s here) that alone would take an hour, and 2**14 still cost 0.1-0.2 s a hash,
# minutes per CI pass.  2**10 keeps the real hashing path (1 MiB, ~2 ms).  Subprocesses the
# tests start inherit it; tests/security checks the production default and the re-hash to it.
os.environ.setdefault("DATAMGMT_AUTH_SCRYPT_N", "1024")
SUITE_SCRYPT_N = os.environ["DATAMGMT_AUTH_SCRYPT_N"]
# Publishing needs [api] base_url (never the Host header); the Flask test client's host.
os.environ.setdefault("DATAMGMT_API_BASE_URL", "http://localhost")

ROOT_PASSWORD = "root-secret-pw"


def _private_postgresql(url: str) -> str:
    """A database of this test run's own, so concurrent runs on one server never collide."""
    parsed = make_url(url)
    private = f"{parsed.database}_{os.getpid()}"
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{private}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{private}"'))
    engine.dispose()
    return parsed.set(database=private).render_as_string(hide_password=False)


def _drop_postgresql(url: str, private_url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(private_url).database}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="session", autouse=True)
def private_cache_generations(tmp_path_factory: pytest.TempPathFactory) -> None:
    """This run's own folder for the memory cache's generation files (else ``var/cache`` of the
    checkout): a run, or a parallel worker (pytest-xdist), that invalidates its caches must not
    empty another's, whose tests count the queries a cached lookup saves.  Servers and daemons
    the tests start inherit it, so they still share the generations of their own run."""
    if "DATAMGMT_CACHE_GENERATION_DIR" not in os.environ:
        os.environ["DATAMGMT_CACHE_GENERATION_DIR"] = str(tmp_path_factory.mktemp("cache-generations"))
        reset_config()


@pytest.fixture(scope="session")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The catalogue URL for this run, created from empty with the migrations."""
    from datamgmt.core.db.migrate import upgrade

    server_url = os.environ.get("DATAMGMT_TEST_DB_URL")
    if server_url and server_url.startswith("postgresql"):
        url = _private_postgresql(server_url)
        # Subprocesses started by tests inherit the private database.
        os.environ["DATAMGMT_TEST_DB_URL"] = url
    else:
        url = server_url or f"sqlite:///{tmp_path_factory.mktemp('db') / 'catalogue.db'}"
    os.environ["DATAMGMT_DATABASE_URL"] = url
    reset_config()
    dispose_engines()
    upgrade(url)
    yield url
    dispose_engines()
    if server_url and server_url.startswith("postgresql"):
        os.environ["DATAMGMT_TEST_DB_URL"] = server_url
        _drop_postgresql(server_url, url)


#: Every identity sequence back to its start, as a fresh catalogue numbers its rows.
_RESTART_SEQUENCES = text(
    "SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, start_value, false)"
    " FROM pg_sequences WHERE schemaname = current_schema()"
)


def clean_catalogue(url: str) -> None:
    """Empty every table, children first, and restart PostgreSQL's sequences.

    DELETE, not TRUNCATE: a test leaves a few rows, and TRUNCATE of 50 tables costs
    PostgreSQL 0.3-0.6 s (new files for each table) where deleting those rows takes
    milliseconds; before every catalogue test, that was minutes of CI.
    """
    engine = get_engine(url)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
        if engine.dialect.name == "postgresql":
            conn.execute(_RESTART_SEQUENCES)


CORRUPTS = "corrupts_catalogue"
LONG = "long"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{LONG}: the file's tests take a minute or more together; they start first"
    )
    config.addinivalue_line(
        "markers", f"{CORRUPTS}(*invariants): the test breaks these invariants on purpose (none named: all)"
    )


def check_after_test(url: str, request: pytest.FixtureRequest) -> None:
    """Fail the test whose committed catalogue violates an invariant (see the module docstring)."""
    mode = os.environ.get("DATAMGMT_TEST_CHECK", "fail")
    marker = request.node.get_closest_marker(CORRUPTS)
    if mode == "off" or (marker is not None and not marker.args):
        return
    from datamgmt.core.db.session import transaction
    from datamgmt.core.invariants import check_catalogue

    with transaction(url, read_only=True) as session:
        report = check_catalogue(session)
    broken_on_purpose = set(marker.args) if marker is not None else set()
    report.violations = [v for v in report.violations if v.invariant not in broken_on_purpose]
    if report.ok:
        return
    message = f"the test left a catalogue that violates its invariants:\n{report.render()}"
    if mode == "report":
        print(f"\n{request.node.nodeid}: {message}")
        return
    pytest.fail(message, pytrace=False)


@pytest.fixture
def db(db_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty catalogue, with no RSE expression results cached from earlier tests; checked
    against the invariants after the test."""
    from datamgmt.core.expression import invalidate_cache

    clean_catalogue(db_url)
    invalidate_cache()
    yield db_url
    check_after_test(db_url, request)


@pytest.fixture
def session(db: str) -> Iterator[Session]:
    """A session on an empty catalogue; the test commits what it wants kept."""
    s = session_factory(db)()
    try:
        yield s
    finally:
        s.rollback()
        s.close()


@pytest.fixture
def root(session: Session) -> str:
    """A bootstrapped catalogue: root account with userpass identity ``root``."""
    from datamgmt.core.bootstrap import bootstrap

    bootstrap(session, "root", ROOT_PASSWORD, "21.T99999")
    session.commit()
    return "root"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files marked ``long`` first; with DATAMGMT_TEST_DB_ONLY=1 (the PostgreSQL pass) only the
    tests that use the catalogue.

    ``make test`` hands the server suites to its xdist workers a file at a time in this order
    (``--dist loadfile --no-loadscope-reorder``): a file of several minutes started last would
    leave one worker running it alone while the other sits idle.

    The stock CLI's ``--legacy`` variants are left to the SQLite pass: they send the same HTTP
    requests as the new-style commands, which the PostgreSQL pass runs.
    """
    items.sort(key=lambda item: item.get_closest_marker(LONG) is None)
    if os.environ.get("DATAMGMT_TEST_DB_ONLY") != "1":
        return
    keep = [item for item in items if _uses_catalogue(item) and not _legacy_cli_variant(item)]
    dropped = [item for item in items if item not in keep]
    config.hook.pytest_deselected(items=dropped)
    items[:] = keep


def _uses_catalogue(item: pytest.Item) -> bool:
    return "db_url" in getattr(item, "fixturenames", ())


def _legacy_cli_variant(item: pytest.Item) -> bool:
    spec = getattr(item, "callspec", None)
    return (
        spec is not None
        and spec.params.get("legacy") is True
        and "rucio" in getattr(item, "fixturenames", ())
    )

"""A database drop while a JSON stream is produced (found by the fault campaign's drops).

The first batch of lines is produced before the response starts, so a drop there is the
clean, retriable 503 of any other call.  Before, only the first item was: a drop among the
next rows of the batch reached the WSGI server before any byte was written, and gunicorn
answered its own bare 500, which no client retries.  A drop at the final COMMIT of the
stream's read-only transaction, with every line sent, no longer cuts the answer at its end.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from datamgmt.api.streaming import stream
from datamgmt.exceptions import DatabaseUnavailable


def produce_then_drop(session: Session) -> Iterator[dict[str, int]]:
    yield {"row": 1}
    raise DatabaseUnavailable("The database connection was lost (OperationalError)")


def test_a_drop_within_the_first_batch_is_a_clean_503(app: Flask, root_headers: dict[str, str]) -> None:
    app.add_url_rule("/_test/stream", "drop_stream", lambda: stream(produce_then_drop))
    response = app.test_client().get("/_test/stream", headers=root_headers)
    assert response.status_code == 503
    assert response.headers["ExceptionClass"] == "DatabaseException"
    assert int(response.headers["Retry-After"]) >= 1


def test_a_stream_longer_than_a_batch_still_streams(app: Flask, root_headers: dict[str, str]) -> None:
    app.config["STREAM_BATCH"] = 2
    app.add_url_rule("/_test/rows", "rows", lambda: stream(lambda session: ({"row": i} for i in range(5))))
    response = app.test_client().get("/_test/rows", headers=root_headers)
    assert response.status_code == 200
    assert response.get_data(as_text=True).splitlines() == [f'{{"row": {i}}}' for i in range(5)]


def test_a_drop_at_the_final_commit_keeps_the_whole_answer(
    app: Flask, root_headers: dict[str, str], db: str
) -> None:
    if not db.startswith("postgresql"):
        pytest.skip("terminating the stream's backend needs PostgreSQL")
    admin = create_engine(db, isolation_level="AUTOCOMMIT")

    def rows_then_drop(session: Session) -> Iterator[dict[str, int]]:
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        yield from ({"row": i} for i in range(3))
        with admin.connect() as conn:  # every row is out; the COMMIT that follows meets a dead backend
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    app.add_url_rule("/_test/commit", "commit_drop", lambda: stream(rows_then_drop))
    try:
        response = app.test_client().get("/_test/commit", headers=root_headers)
        assert response.status_code == 200
        assert response.get_data(as_text=True).splitlines() == [f'{{"row": {i}}}' for i in range(3)]
    finally:
        admin.dispose()

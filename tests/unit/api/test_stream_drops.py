"""A database drop while a JSON stream is produced (found by the fault campaign's drops).

The first batch of lines is produced before the response starts, so a drop there is the
clean, retriable 503 of any other call.  Before, only the first item was: a drop among the
next rows of the batch reached the WSGI server before any byte was written, and gunicorn
answered its own bare 500, which no client retries.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Flask
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

"""The cheap access logger writes exactly gunicorn's lines."""

from __future__ import annotations

import base64
import os
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from datamgmt.api.access_log import AccessLines, AccessLogger


def _environ(**extra: str) -> dict[str, str]:
    return {
        "REMOTE_ADDR": "127.0.0.1",
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/rses/?expression=tier%3D1%26cloud%3DEU",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": "/rses/",
        "QUERY_STRING": "expression=tier%3D1%26cloud%3DEU",
        "HTTP_USER_AGENT": "rucio-clients/41.5.1",
        **extra,
    }


def _lines(logger_class: type[Logger], path: Path, log_format: str | None, **environ: str) -> list[str]:
    config = Config()
    config.set("accesslog", str(path))
    if log_format is not None:
        config.set("access_log_format", log_format)
    logger = logger_class(config)
    request = SimpleNamespace(headers=[("X-Rucio-Account", "root")])
    for status, sent in (("200 OK", 512), ("404 NOT FOUND", 0), ("500 INTERNAL SERVER ERROR", None)):
        response = SimpleNamespace(status=status, sent=sent, headers=[("Content-Type", "application/json")])
        logger.access(response, request, _environ(**environ), timedelta(microseconds=1234))
    for handler in logger.access_log.handlers:
        handler.flush()
    lines = path.read_text().splitlines()
    path.unlink()
    return lines


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"HTTP_REFERER": "http://example.org/"},
        {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"alice:secret").decode()},
        {"HTTP_AUTHORIZATION": "Bearer ey.x.y"},
    ],
)
def test_default_format_lines_are_gunicorns(tmp_path: Path, environ: dict[str, str]) -> None:
    ours = _lines(AccessLogger, tmp_path / "ours.log", None, **environ)
    theirs = _lines(Logger, tmp_path / "theirs.log", None, **environ)
    assert len(ours) == 3
    # the date may tick between the two loggers: compare the lines without it
    assert [line.split("]", 1)[1] for line in ours] == [line.split("]", 1)[1] for line in theirs]
    assert [line.split("[", 1)[0] for line in ours] == [line.split("[", 1)[0] for line in theirs]


def test_a_custom_format_is_left_to_gunicorn(tmp_path: Path) -> None:
    custom = '%(h)s "%(r)s" %(s)s %(D)s {x-rucio-account}i'.replace("{", "%({").replace("}i", "}i)s")
    ours = _lines(AccessLogger, tmp_path / "ours.log", custom)
    assert ours == _lines(Logger, tmp_path / "theirs.log", custom)
    assert ours[0].endswith(" 200 1234 root")


def _served_lines(tmp_path: Path, body: list[bytes], status: str, **environ: str) -> list[str]:
    """What :class:`AccessLines` writes for one request through a WSGI app answering ``body``."""
    closed: list[bool] = []

    class Body(list[bytes]):
        def close(self) -> None:
            closed.append(True)

    def app(_environ: dict[str, str], start_response: Any) -> Body:
        start_response(status, [("Content-Type", "application/x-json-stream")])
        return Body(body)

    path = tmp_path / "lines.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        served = AccessLines(app, fd)(environ, lambda *_: None)
        assert b"".join(served) == b"".join(body)
        served.close()  # type: ignore[attr-defined]  # the server's duty (PEP 3333)
    finally:
        os.close(fd)
    assert closed == [True], "the app's body is closed through the middleware"
    return path.read_text().splitlines()


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"HTTP_REFERER": "http://example.org/"},
        {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"alice:x").decode()},
    ],
)
def test_the_middleware_writes_gunicorns_line(tmp_path: Path, environ: dict[str, str]) -> None:
    """Under granian (no RAW_URI) the line is the one gunicorn writes for the same request."""
    granian_environ = {k: v for k, v in _environ(**environ).items() if k != "RAW_URI"}
    ours = _served_lines(tmp_path, [b'{"a": 1}\n', b'{"b": 2}\n'], "200 OK", **granian_environ)
    theirs = _lines(Logger, tmp_path / "theirs.log", None, **environ)
    assert len(ours) == 1
    # gunicorn's line is for a made-up response of 512 bytes; the middleware counted the 18 it served
    assert ours[0].split("]", 1)[1] == theirs[0].split("]", 1)[1].replace(" 512 ", " 18 ")
    assert ours[0].split("[", 1)[0] == theirs[0].split("[", 1)[0]


def test_the_middleware_quotes_the_path_as_the_client_sent_it(tmp_path: Path) -> None:
    environ = {**_environ(), "PATH_INFO": "/dids/user.jdoe/a b", "QUERY_STRING": ""}
    del environ["RAW_URI"]
    (line,) = _served_lines(tmp_path, [], "404 NOT FOUND", **environ)
    assert '"GET /dids/user.jdoe/a%20b HTTP/1.1" 404 0 ' in line

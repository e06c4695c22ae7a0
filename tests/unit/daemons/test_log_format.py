"""One log format: JSON lines when configured (or not on a terminal), readable lines on a
terminal, the same fields in both; gfal2's INFO chatter dropped unless asked for."""

from __future__ import annotations

import json
import logging

import pytest

from datamgmt.config import reset_config
from datamgmt.daemons import logs


@pytest.fixture
def restore_logging():  # type: ignore[no-untyped-def]
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    gfal2_level = logging.getLogger("gfal2").level
    yield
    root.handlers[:], root.level = handlers, level
    logging.getLogger("gfal2").setLevel(gfal2_level)
    reset_config()


def _record() -> logging.LogRecord:
    record = logging.LogRecord(
        "datamgmt.conveyor-poller", logging.WARNING, __file__, 1, "transfer failed", (), None
    )
    record.fields = {"did": "user.jdoe:f1", "rse": "BROKEN", "error": "Not a directory"}  # type: ignore[attr-defined]
    return record


def test_json_and_text_carry_the_same_fields(restore_logging, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    line = json.loads(logs.formatter("json").format(_record()))
    assert (line["level"], line["msg"], line["did"], line["rse"]) == (
        "warning",
        "transfer failed",
        "user.jdoe:f1",
        "BROKEN",
    )
    text = logs.formatter("text").format(_record())
    assert "WARNING" in text and "transfer failed did=user.jdoe:f1 rse=BROKEN error=Not a directory" in text
    monkeypatch.setenv("DATAMGMT_LOGGING_FORMAT", "text")
    reset_config()
    assert isinstance(logs.formatter(), logs.TextFormatter)
    monkeypatch.setenv("DATAMGMT_LOGGING_FORMAT", "auto")  # stderr is not a terminal under pytest
    reset_config()
    assert isinstance(logs.formatter(), logs.JsonFormatter)


def test_gfal2_info_is_off_by_default(restore_logging, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    logs.configure("info")
    assert not logging.getLogger("gfal2").isEnabledFor(logging.INFO)
    assert logging.getLogger("gfal2").isEnabledFor(logging.WARNING)
    monkeypatch.setenv("DATAMGMT_LOGGING_GFAL2_LEVEL", "debug")
    reset_config()
    logs.configure("info")
    assert logging.getLogger("gfal2").isEnabledFor(logging.DEBUG)

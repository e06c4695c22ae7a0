"""The signing keys kept under var/ when none is configured: every worker of a host signs alike,
also workers that start together (gunicorn's, or the parallel test workers) and all find the key
missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamgmt.api import app as app_module
from datamgmt.config import Config


def _config(tmp_path: Path, key_file: Path) -> Config:
    return Config(path=tmp_path / "none.cfg", environ={"DATAMGMT_WEB_SECRET_FILE": str(key_file)})


def test_the_first_worker_writes_a_key_the_next_ones_read(tmp_path: Path) -> None:
    key_file = tmp_path / "var" / "web_secret"
    first = app_module._stable_secret(_config(tmp_path, key_file), "web", "secret", "web_secret")
    again = app_module._stable_secret(_config(tmp_path, key_file), "web", "secret", "web_secret")
    assert len(first) == 64 and again == first
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in key_file.parent.iterdir()] == ["web_secret"], "no spare file is left behind"


def test_a_key_another_worker_wrote_meanwhile_is_adopted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other worker's key lands between this worker's look and its write: it is used, not refused."""
    key_file = tmp_path / "var" / "web_secret"
    key_file.parent.mkdir()
    real_exists = Path.exists

    def exists_then_raced(path: Path) -> bool:
        if path == key_file and not real_exists(path):
            key_file.write_text("b" * 64)  # the other worker, just after this one looked
            return False
        return real_exists(path)

    monkeypatch.setattr(Path, "exists", exists_then_raced)
    assert app_module._stable_secret(_config(tmp_path, key_file), "web", "secret", "web_secret") == b"b" * 64
    monkeypatch.undo()
    assert [p.name for p in key_file.parent.iterdir()] == ["web_secret"]

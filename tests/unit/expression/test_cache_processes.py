"""With the per-process memory backend, an RSE change committed by one process reaches the
expression results of every other process of the host before its next call (the generation
lives in a file), as it does with a shared Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from datamgmt.config import PROJECT_ROOT, reset_config
from datamgmt.core import expression, rse

WORKER = textwrap.dedent(
    """
    import json, sys
    from datamgmt.core.db.session import transaction
    from datamgmt.core.expression import parse_expression
    from datamgmt.exceptions import DatamgmtError

    print("ready", flush=True)
    for line in sys.stdin:
        with transaction(sys.argv[1], read_only=True) as session:
            try:
                print(json.dumps([r["rse"] for r in parse_expression(session, json.loads(line))]), flush=True)
            except DatamgmtError as exc:
                print(json.dumps(type(exc).__name__), flush=True)
    """
)


@pytest.fixture
def memory_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("DATAMGMT_CACHE_BACKEND", "memory")
    monkeypatch.setenv("DATAMGMT_CACHE_PREFIX", f"test-{uuid.uuid4().hex}")
    monkeypatch.setenv("DATAMGMT_CACHE_GENERATION_DIR", str(tmp_path / "generations"))
    reset_config()
    expression.set_cache_region(None)
    yield
    monkeypatch.undo()
    reset_config()
    expression.set_cache_region(None)


@pytest.fixture
def other_process(db: str, memory_cache: None) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER, db],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    yield process
    assert process.stdin is not None
    process.stdin.close()
    process.wait(timeout=30)


def resolve(process: subprocess.Popen[str], text: str) -> object:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(json.dumps(text) + "\n")
    process.stdin.flush()
    return json.loads(process.stdout.readline())


def test_an_attribute_added_here_is_seen_by_the_other_process_at_once(
    session: Session, other_process: subprocess.Popen[str]
) -> None:
    rse.add_rse(session, "SITE-A")
    rse.add_rse(session, "SITE-B")
    rse.add_rse_attribute(session, "SITE-A", "tier", "1")
    session.commit()
    assert resolve(other_process, "tier=1") == ["SITE-A"]  # the other process now holds a snapshot

    rse.add_rse_attribute(session, "SITE-B", "tier", "1")
    session.commit()
    assert resolve(other_process, "tier=1") == ["SITE-A", "SITE-B"]

    rse.delete_rse(session, "SITE-A")
    session.commit()
    assert resolve(other_process, "tier=1") == ["SITE-B"]

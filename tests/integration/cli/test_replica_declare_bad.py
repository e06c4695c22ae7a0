"""``datamgmt replica declare-bad`` against a live server."""

from __future__ import annotations

import json

import pytest

from tests.integration.cli.conftest import Live
from tests.integration.cli.test_user_commands import dataset, json_lines, ok  # noqa: F401 - fixture

pytestmark = pytest.mark.integration


def test_declare_bad_by_pfn(live: Live, dataset: str) -> None:  # noqa: F811
    f1 = dataset.split(":")[0] + ":f1"
    listed = json_lines(ok(live.user("replica", "list", "--json", f1)))
    pfn = next(iter(listed[0]["pfns"]))
    assert json.loads(ok(live.user("replica", "declare-bad", "--json", "--reason", "checksum", pfn))) == {
        "declared": 1
    }
    again = live.user("replica", "declare-bad", "--reason", "checksum", pfn)
    assert again.exit_code == 1 and "Already declared" in again.stdout
    (state,) = json_lines(ok(live.user("replica", "list", "--json", "--all-states", f1)))
    assert "BAD" in json.dumps(state)
    unknown = live.user("replica", "declare-bad", "--reason", "x", "file:///nowhere/f")
    assert unknown.exit_code != 0 and "ReplicaNotFound" in unknown.output
    assert len(unknown.output.strip().splitlines()) == 1

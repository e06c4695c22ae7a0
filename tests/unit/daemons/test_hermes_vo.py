"""hermes on a multi-VO instance: each VO's messages say their VO, and their ids never collide.

Outbox ids are unique within one VO's catalogue only; a receiver deduplicating on the id of
two VOs' messages would drop one of them.
"""

from __future__ import annotations

import json
from typing import ClassVar

import pytest
from sqlalchemy.orm import Session

from datamgmt.core import vo as vos
from datamgmt.core.db.session import transaction
from datamgmt.core.message import add_messages
from datamgmt.daemons.hermes import Hermes
from datamgmt.daemons.hermes.base import Outgoing, Sink, body
from tests.vo_catalogues import multi_vo  # noqa: F401 (a fixture)


class Recorder(Sink):
    """A service that takes every message and keeps its key and wire form."""

    service: ClassVar[str] = "webhook"

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []

    def send(self, row: Outgoing) -> None:
        self.sent.append((row.key, json.loads(body(row))))

    def close(self) -> None:
        pass


def _deliver(url: str, vo: str) -> list[tuple[str, dict]]:
    hermes = Hermes("h", url, vo)
    recorder = Recorder()
    hermes.sinks = {"webhook": recorder}
    assert hermes.run_once(10) == 1
    return recorder.sent


def test_each_vos_messages_carry_their_vo_and_keys_apart(
    multi_vo: str,  # noqa: F811
    session: Session,
    root: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATAMGMT_HERMES_WEBHOOK_URL", "http://127.0.0.1:9/unused")
    monkeypatch.setenv("DATAMGMT_HERMES_WEBHOOK_SECRET", "a-secret-for-signing")
    vos.add_vo(session, "abc", None, None, "root", multi_vo)
    add_messages(session, "RULE_OK", [{"rule_id": "r1"}])
    session.commit()
    abc = vos.catalogue_url(multi_vo, "abc")
    with transaction(abc) as vo_session:
        add_messages(vo_session, "RULE_OK", [{"rule_id": "r1"}])

    [(ours_key, ours)] = _deliver(multi_vo, "def")
    [(theirs_key, theirs)] = _deliver(multi_vo, "abc")

    assert ours["id"] == theirs["id"]  # each catalogue numbers its own outbox
    assert ours_key != theirs_key and theirs_key == f"abc:{theirs['id']}"
    assert "vo" not in ours and "vo" not in ours["payload"]
    assert theirs["vo"] == "abc" and theirs["payload"] == {"rule_id": "r1", "vo": "abc"}

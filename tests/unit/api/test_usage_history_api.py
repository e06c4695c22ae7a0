"""Usage history and per-account usage of an RSE over REST; abacus writes the history."""

from __future__ import annotations

import json

from flask.testing import FlaskClient
from sqlalchemy import func, select

from datamgmt.core import quota
from datamgmt.core.db.models import AccountUsageHistory, RSEUsageHistory
from datamgmt.core.rse import set_rse_usage
from datamgmt.core.rule import add_rule
from datamgmt.daemons.abacus import Abacus
from tests.unit.api.conftest import make_account
from tests.unit.api.test_bad_replicas_api import failure, lines
from tests.unit.rules.conftest import Catalogue, cat  # noqa: F401 - fixture


def _history_rows(cat: Catalogue) -> tuple[int, int]:  # noqa: F811
    cat.session.expire_all()
    counts = (
        cat.session.scalar(select(func.count()).select_from(AccountUsageHistory)),
        cat.session.scalar(select(func.count()).select_from(RSEUsageHistory)),
    )
    cat.session.rollback()
    return counts


def test_abacus_records_usage_as_it_changes(client: FlaskClient, cat, db: str) -> None:  # noqa: F811
    reader = make_account(cat.session, "reader")
    add_rule(cat.session, cat.files(2, size=100), "jdoe", 1, "R1")
    quota.set_local_account_limit(cat.session, "jdoe", "R1", 10_000)
    cat.session.commit()
    abacus = Abacus(db_url=db)
    abacus.run_once(1000)
    first = _history_rows(cat)
    abacus.run_once(1000)
    assert _history_rows(cat) == first, "nothing changed, nothing recorded"
    add_rule(cat.session, cat.files(1, size=50), "jdoe", 1, "R1")
    cat.session.commit()
    abacus.run_once(1000)

    history = client.get("/accounts/jdoe/usage/history/R1", headers=reader)
    assert (history.status_code, history.content_type) == (200, "application/json")
    assert [(h["files"], h["bytes"]) for h in history.json][-2:] == [(2, 200), (3, 250)]
    assert "T" in history.json[0]["updated_at"]
    assert failure(client.get("/accounts/nobody/usage/history/R1", headers=reader)) == (
        404,
        "AccountNotFound",
    )
    assert failure(client.get("/accounts/jdoe/usage/history/NOWHERE", headers=reader)) == (404, "RSENotFound")

    rse_history = lines(client.get("/rses/R1/usage/history?source=rucio", headers=reader))
    assert [(h["rse"], h["source"], h["used"]) for h in rse_history] == [
        ("R1", "rucio", 250),
        ("R1", "rucio", 200),
    ]
    assert lines(client.get("/rses/R1/usage/history?source=storage", headers=reader)) == []

    per_account = client.get("/rses/R1/accounts/usage", headers=reader)
    assert (per_account.status_code, per_account.content_type) == (200, "application/json")
    rows = {line["account"]: line for line in map(json.loads, per_account.data.decode().splitlines())}
    assert (rows["jdoe"]["used_files"], rows["jdoe"]["used_bytes"], rows["jdoe"]["quota_bytes"]) == (
        3,
        250,
        10_000,
    )
    assert (rows["reader"]["used_bytes"], rows["reader"]["quota_bytes"]) == (0, None)


def test_every_change_of_a_source_is_kept(client: FlaskClient, cat, db: str, root_headers: dict) -> None:  # noqa: F811
    for used in (10, 20, 20, 30):
        set_rse_usage(cat.session, "R2", "srm", used, 100 - used)
        cat.session.commit()
        Abacus(db_url=db).run_once(100)
    history = lines(client.get("/rses/R2/usage/history?source=srm", headers=root_headers))
    assert [(h["used"], h["free"], h["total"]) for h in history] == [
        (30, 70, 100),
        (20, 80, 100),
        (10, 90, 100),
    ]

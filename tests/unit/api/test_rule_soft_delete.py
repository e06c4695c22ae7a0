"""``DELETE /rules/{id}`` deletes softly, as Rucio's API does: the rule expires within the hour
and the judge-cleaner removes it then."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from datamgmt.core.db.models import Lock, Rule
from datamgmt.core.db.types import utcnow
from datamgmt.core.did import add_collection
from datamgmt.core.did_content import attach
from datamgmt.core.quota import set_local_account_limit
from datamgmt.core.replica import add_replicas
from datamgmt.core.rse import add_rse
from datamgmt.core.rule import add_rule
from datamgmt.core.rule_update import SOFT_DELETE_GRACE
from datamgmt.core.scope import add_scope
from datamgmt.daemons.judge.cleaner import Cleaner


def _rule(session: Session, lifetime: int | None = None) -> str:
    add_rse(session, "SITE")
    add_scope(session, "root", "root")
    set_local_account_limit(session, "root", "SITE", -1)
    files = [{"scope": "root", "name": "f1", "bytes": 1, "adler32": "00000001"}]
    add_replicas(session, "SITE", files, "root")
    add_collection(session, "root", "ds", "DATASET", "root")
    attach(session, "root", "ds", files)
    rule_id = add_rule(session, [{"scope": "root", "name": "ds"}], "root", 1, "SITE", lifetime=lifetime)[0]
    session.commit()
    return rule_id


def test_delete_keeps_the_rule_for_the_grace_period(
    client: FlaskClient, session: Session, root_headers: dict
) -> None:
    rule_id = _rule(session)
    before = utcnow()
    assert client.delete(f"/rules/{rule_id}", headers=root_headers).status_code == 200
    session.expire_all()
    rule = session.get(Rule, rule_id)
    assert rule is not None and session.scalar(select(Lock.rule_id).where(Lock.rule_id == rule_id)) == rule_id
    assert before + SOFT_DELETE_GRACE <= rule.expires_at <= utcnow() + SOFT_DELETE_GRACE
    assert client.get(f"/rules/{rule_id}", headers=root_headers).status_code == 200


def test_delete_never_extends_a_sooner_expiry(
    client: FlaskClient, session: Session, root_headers: dict
) -> None:
    rule_id = _rule(session, lifetime=600)
    expiry = session.get(Rule, rule_id).expires_at
    session.rollback()  # end the read, so that the API's writer does not wait on it
    assert client.delete(f"/rules/{rule_id}", headers=root_headers).status_code == 200
    session.expire_all()
    assert session.get(Rule, rule_id).expires_at == expiry


def test_cleaner_removes_the_softly_deleted_rule_once_due(
    client: FlaskClient, session: Session, root_headers: dict, db: str
) -> None:
    rule_id = _rule(session)
    assert client.delete(f"/rules/{rule_id}", headers=root_headers).status_code == 200
    Cleaner(db_url=db).run_once(100)
    session.expire_all()
    assert session.get(Rule, rule_id) is not None  # not due yet
    session.get(Rule, rule_id).expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    Cleaner(db_url=db).run_once(100)
    session.expire_all()
    assert session.get(Rule, rule_id) is None
    assert client.get(f"/rules/{rule_id}", headers=root_headers).status_code == 404


def test_locked_rule_is_refused_and_unchanged(
    client: FlaskClient, session: Session, root_headers: dict
) -> None:
    rule_id = _rule(session)
    session.get(Rule, rule_id).locked = True
    session.commit()
    response = client.delete(f"/rules/{rule_id}", headers=root_headers)
    assert response.status_code == 409 and response.headers["ExceptionClass"] == "UnsupportedOperation"
    session.expire_all()
    assert session.get(Rule, rule_id).expires_at is None

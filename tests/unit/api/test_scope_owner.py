"""``PUT /scopes/{account}/{scope}`` gives a scope to another account; only admins may."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.core.scope import add_scope, get_scope_owner
from tests.unit.api.conftest import make_account


def test_admin_moves_a_scope(client: FlaskClient, session: Session, root_headers: dict) -> None:
    make_account(session, "alice")
    make_account(session, "bob")
    add_scope(session, "user.alice", "alice")
    session.commit()
    assert client.put("/scopes/bob/user.alice", headers=root_headers).status_code == 201
    session.expire_all()
    assert get_scope_owner(session, "user.alice") == "bob"
    assert client.get("/scopes/bob/scopes", headers=root_headers).get_json() == ["user.alice"]


def test_owner_cannot_give_away_or_take_and_unknowns_are_404(
    client: FlaskClient, session: Session, root_headers: dict
) -> None:
    alice = make_account(session, "alice")
    bob = make_account(session, "bob")
    add_scope(session, "user.alice", "alice")
    session.commit()
    assert client.put("/scopes/bob/user.alice", headers=bob).status_code == 401
    assert client.put("/scopes/bob/user.alice", headers=alice).status_code == 401
    session.expire_all()
    assert get_scope_owner(session, "user.alice") == "alice"
    session.rollback()  # end the read, so that the API's writer does not wait on it
    missing_scope = client.put("/scopes/bob/nope", headers=root_headers)
    assert missing_scope.status_code == 404 and missing_scope.headers["ExceptionClass"] == "ScopeNotFound"
    missing_account = client.put("/scopes/nobody/user.alice", headers=root_headers)
    assert (
        missing_account.status_code == 404 and missing_account.headers["ExceptionClass"] == "AccountNotFound"
    )

"""Every route checks a permission-policy action or is listed as public or self-only, with its
reason, and docs/permissions.md shows the matrix as it is (``tests/route_policy.py``)."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.route_policy import DOC, PUBLIC, SELF, actions_of, application, document, routes, who_may


@pytest.fixture(scope="module")
def app() -> Flask:
    return application()


def test_every_route_checks_an_action_or_is_listed_with_a_reason(app: Flask) -> None:
    found = routes(app)
    assert len(found) > 200, "the walk must see the whole application"
    unchecked = [
        f"{r.method} {r.rule}" for r in found if not r.actions and r.rule not in PUBLIC | SELF.keys()
    ]
    assert not unchecked, "routes that check no permission-policy action:\n" + "\n".join(unchecked)


def test_every_action_a_route_checks_has_a_policy_entry(app: Flask) -> None:
    missing = sorted({f"{a} ({r.rule})" for r in routes(app) for a in r.actions if who_may(a) is None})
    assert not missing, "actions without an entry in datamgmt/core/permission.py:\n" + "\n".join(missing)


def test_listed_routes_exist_and_are_what_the_list_says(app: Flask) -> None:
    views = {rule.rule: app.view_functions[rule.endpoint] for rule in app.url_map.iter_rules()}
    assert not PUBLIC.keys() - views.keys(), "PUBLIC names routes the application does not have"
    assert not SELF.keys() - views.keys(), "SELF names routes the application does not have"
    not_public = [rule for rule in PUBLIC if not getattr(views[rule], "public", False)]
    assert not not_public, f"listed as public but the view requires a token: {not_public}"
    public_self = [rule for rule in SELF if getattr(views[rule], "public", False)]
    assert not public_self, f"listed as the caller's own but the view needs no token: {public_self}"
    checking = [rule for rule in SELF if actions_of(views[rule])]
    assert not checking, f"listed as checking nothing but they check actions: {checking}"


def test_helpers_and_their_string_arguments_are_followed(app: Flask) -> None:
    """The requests listings authorize in a shared helper, with the action as its argument."""
    by_endpoint = {(r.endpoint, r.method): r.actions for r in routes(app)}
    assert by_endpoint[("requests.list_requests", "GET")] == ("list_requests",)
    assert by_endpoint[("requests.list_requests_history", "GET")] == ("list_requests_history",)
    assert by_endpoint[("ui.accounts", "GET")] == ("see_admin_pages",)


def _unchecked_view() -> str:
    return "no check"


def _view_with_unknown_action() -> None:
    authorize(None, "launch_rockets" if _unchecked_view() else "read")  # type: ignore[name-defined]  # noqa: F821 - parsed, never run


def test_a_view_without_a_check_or_with_an_unknown_action_is_seen() -> None:
    assert actions_of(_unchecked_view) == set()
    assert actions_of(_view_with_unknown_action) == {"launch_rockets", "read"}
    assert who_may("launch_rockets") is None and who_may("read") == "any account"


def test_permissions_doc_is_current(app: Flask) -> None:
    text = DOC.read_text()
    assert text == document(app, text), (
        "docs/permissions.md is stale: run .venv/bin/python -m tests.route_policy"
    )

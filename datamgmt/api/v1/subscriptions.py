"""``/subscriptions``: Rucio's subscription endpoints.

Bodies are ``{"options": {...}}`` as rucio-clients sends them; listings stream one
subscription per line with ``filter`` and ``replication_rules`` as JSON text, which is what
``rucio-admin subscription list`` parses.  Accounts manage their own subscriptions;
admins manage everyone's; every authenticated account may read them.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session

from datamgmt.api.context import authorize, unit_of_work
from datamgmt.api.openapi import doc, schema_object
from datamgmt.api.params import json_object, key, query_bool
from datamgmt.api.streaming import created, json_response, stream
from datamgmt.core import subscription as subscriptions
from datamgmt.core.rule import list_rules

bp = Blueprint("subscriptions", __name__, url_prefix="/subscriptions")

_OPTIONS_BODY = schema_object(
    ["options"],
    options=schema_object(
        filter={"type": "object"},
        replication_rules={"type": "array", "items": {"type": "object"}},
        comments={"type": ["string", "null"]},
        lifetime={"type": ["number", "boolean", "null"]},
        retroactive={"type": ["boolean", "null"]},
        dry_run={"type": ["boolean", "null"]},
        priority={"type": ["integer", "null"]},
        state={"type": ["string", "null"]},
    ),
)


def _options() -> dict[str, Any]:
    return dict(key(json_object(), "options", dict))


@bp.post("/<account>/<name>")
@doc("Create a subscription; answers its id", body=_OPTIONS_BODY)
def add_subscription(account: str, name: str) -> Response:
    options = _options()
    arguments: dict[str, Any] = {
        "filter_": key(options, "filter", dict),
        "replication_rules": key(options, "replication_rules", list),
        "comments": key(options, "comments", str, None),
        "lifetime": key(options, "lifetime", (int, float, bool), None),
        "retroactive": bool(key(options, "retroactive", bool, False)),
        "dry_run": bool(key(options, "dry_run", bool, False)),
    }
    priority = key(options, "priority", int, None)
    if priority is not None:
        arguments["priority"] = priority
    with unit_of_work() as session:
        authorize(
            session, "add_subscription", account=account, replication_rules=arguments["replication_rules"]
        )
        subscription_id = subscriptions.add_subscription(session, name, account, **arguments)
    return created(subscription_id)


@bp.put("/<account>/<name>")
@doc("Update a subscription", body=_OPTIONS_BODY)
def update_subscription(account: str, name: str) -> Response:
    options = _options()
    with unit_of_work() as session:
        authorize(
            session,
            "update_subscription",
            account=account,
            replication_rules=options.get("replication_rules"),
        )
        subscriptions.update_subscription(session, name, account, options)
    return created()


def _listing(**criteria: str) -> Response:
    def rows(session: Session) -> Any:
        authorize(session, "read")
        yield from subscriptions.list_subscriptions(session, **criteria)

    return stream(rows)


@bp.get("/")
@doc("Every subscription")
def list_all() -> Response:
    return _listing()


@bp.get("/<account>")
@doc("The subscriptions of an account")
def list_account_subscriptions(account: str) -> Response:
    return _listing(account=account)


@bp.get("/<account>/<name>")
@doc("One subscription of an account, as a stream of one")
def get_subscription(account: str, name: str) -> Response:
    return _listing(account=account, name=name)


@bp.get("/name/<name>")
@doc("The subscriptions with this name, whatever their account")
def list_named_subscriptions(name: str) -> Response:
    return _listing(name=name)


@bp.get("/id/<subscription_id>")
@bp.get("/Id/<subscription_id>")  # older Rucio releases
@doc("One subscription by id")
def get_subscription_by_id(subscription_id: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "read")
        return json_response(subscriptions.get_subscription_by_id(session, subscription_id))


@bp.get("/<account>/<name>/rules")
@doc("The rules a subscription made", query={"state": {"type": "string"}})
def list_subscription_rules(account: str, name: str) -> Response:
    state = request.args.get("state")

    def rows(session: Session) -> Any:
        authorize(session, "read")
        [subscription] = subscriptions.list_subscriptions(session, name=name, account=account)[:1]
        filters = {"subscription_id": subscription["id"], **({"state": state} if state else {})}
        yield from list_rules(session, filters)

    return stream(rows)


@bp.get("/<account>/<name>/rules/states")
@bp.get("/<account>/rules/states", defaults={"name": None})
@doc(
    "How many rules of each state an account's subscriptions made",
    query={"include_details": {"type": "string"}},
)
def rule_states(account: str, name: str | None) -> Response:
    include_details = query_bool("include_details")

    def rows(session: Session) -> Any:
        authorize(session, "read")
        yield from subscriptions.subscription_rule_states(session, account, name, include_details)

    return stream(rows)

"""Replication rules: ``/rules`` plus the rule listings under ``/accounts`` and ``/dids``.

All rule routes live here so that one module speaks to ``core.rule``.  ``POST
/rules/explain`` is our extension: the dry run of ``POST /rules/``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session

from datamgmt.api.context import authorize, issuer, unit_of_work
from datamgmt.api.openapi import doc, schema_object
from datamgmt.api.params import dict_list, json_object, key
from datamgmt.api.streaming import created, done, json_response, stream
from datamgmt.core import rule as rules
from datamgmt.core import rule_analysis, rule_reduce, rule_update
from datamgmt.core import rule_history as history
from datamgmt.core.did import did_columns, existing_dids

bp = Blueprint("rules", __name__)

_DID_LIST = {
    "type": "array",
    "items": schema_object(["scope", "name"], scope={"type": "string"}, name={"type": "string"}),
}
_NULLABLE_STRING = {"type": ["string", "null"]}
_NULLABLE_INT = {"type": ["integer", "null"]}
_RULE_BODY = schema_object(
    ["dids", "copies", "rse_expression", "account"],
    dids=_DID_LIST,
    copies={"type": "integer"},
    rse_expression={"type": "string"},
    account=_NULLABLE_STRING,
    grouping=_NULLABLE_STRING,
    weight=_NULLABLE_STRING,
    lifetime=_NULLABLE_INT,
    locked={"type": "boolean"},
    activity=_NULLABLE_STRING,
    comment=_NULLABLE_STRING,
    ask_approval={"type": "boolean"},
    asynchronous={"type": "boolean"},
    priority={"type": "integer"},
    split_container={"type": "boolean"},
)

#: Optional body keys of POST /rules/ and their types, passed to core unchanged.
_OPTIONS: dict[str, type | tuple[type, ...]] = {
    "grouping": str,
    "weight": str,
    "lifetime": int,
    "locked": bool,
    "source_replica_expression": str,
    "activity": str,
    "notify": str,
    "purge_replicas": bool,
    "ignore_availability": bool,
    "ask_approval": bool,
    "asynchronous": bool,
    "priority": int,
    "comment": str,
    "meta": (dict, str),
    "split_container": bool,
}


def _with_bytes(session: Session, found: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Rule listings carry their DID's ``bytes`` (the client's table shows it), looked up per batch."""
    iterator = iter(found)
    while batch := list(islice(iterator, 1000)):
        sizes = existing_dids(session, [(rule["scope"], rule["name"]) for rule in batch])
        for rule in batch:
            did = sizes.get((rule["scope"], rule["name"]))
            yield {**rule, "bytes": did.bytes if did is not None else None}


def _rule_arguments(body: dict[str, Any]) -> dict[str, Any]:
    """Core arguments from a rule body; ``account`` must be present (null means the issuer)."""
    arguments: dict[str, Any] = {
        "dids": dict_list(body, "dids"),
        "copies": key(body, "copies", int),
        "rse_expression": key(body, "rse_expression", str),
        "account": key(body, "account", str) or issuer(),
    }
    for name, kind in _OPTIONS.items():
        value = key(body, name, kind, None)
        if value is not None:
            arguments[name] = json.loads(value) if name == "meta" and isinstance(value, str) else value
    return arguments


def _authorize_rule(session: Session, arguments: dict[str, Any]) -> None:
    """The add_rule check, shown every argument the policy reads (admin-only options included)."""
    authorize(
        session,
        "add_rule",
        account=arguments["account"],
        locked=arguments.get("locked"),
        purge_replicas=arguments.get("purge_replicas"),
        ignore_availability=arguments.get("ignore_availability"),
        scopes=[str(did.get("scope")) for did in arguments["dids"]],
    )


@bp.post("/rules/")
@doc("Create replication rules, one per DID; answers the JSON list of ids", body=_RULE_BODY)
def add_rule() -> Response:
    arguments = _rule_arguments(json_object())
    with unit_of_work() as session:
        _authorize_rule(session, arguments)
        ids = rules.add_rule(session, **arguments)
    return created(json.dumps(ids))


@bp.post("/rules/explain")
@doc("Dry run of POST /rules/: chosen RSEs, bytes to transfer, quota after", body=_RULE_BODY)
def explain_rule() -> Response:
    arguments = _rule_arguments(json_object())
    explained = {name: arguments[name] for name in ("dids", "account", "copies", "rse_expression")}
    for name in ("grouping", "weight", "ignore_availability"):
        if name in arguments:
            explained[name] = arguments[name]
    with unit_of_work() as session:
        _authorize_rule(session, arguments)
        return json_response(rules.explain_rule(session, **explained))


@bp.get("/rules/")
@doc("Rules matching equality filters", query={name: {"type": "string"} for name in rules.RULE_FILTERS})
def list_rules() -> Response:
    filters = {name: request.args[name] for name in rules.RULE_FILTERS if name in request.args}

    def rows(session: Session) -> Any:
        authorize(session, "read")
        yield from _with_bytes(session, rules.list_rules(session, filters))

    return stream(rows)


@bp.get("/rules/<rule_id>")
@doc("One rule")
def get_rule(rule_id: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "read")
        return json_response(rules.get_rule(session, rule_id))


@bp.put("/rules/<rule_id>")
@doc(
    "Update a rule, or approve/deny it with options.approve",
    body=schema_object(["options"], options={"type": "object"}),
)
def update_rule(rule_id: str) -> Response:
    options = dict(key(json_object(), "options", dict) or {})
    with unit_of_work() as session:
        if "approve" in options:
            approve = options.pop("approve")
            if approve:
                authorize(session, "approve_rule", rule_id=rule_id)
                rules.approve_rule(session, rule_id)
            else:
                authorize(session, "deny_rule", rule_id=rule_id)
                rules.deny_rule(session, rule_id, key(options, "comment", str, None))
            return done()
        authorize(session, "update_rule", rule_id=rule_id, options=options)
        rule_update.update_rule(session, rule_id, options)
    return done()


@bp.post("/rules/<rule_id>/move")
@doc(
    "Move a rule to another RSE expression; answers the child rule's id",
    body=schema_object(
        ["rse_expression"],
        rse_expression={"type": "string"},
        override={"type": "object"},
        activity={"type": ["string", "null"]},
        source_replica_expression={"type": ["string", "null"]},
    ),
)
def move_rule(rule_id: str) -> Response:
    body = json_object()
    expression = key(body, "rse_expression", str)
    override = dict(key(body, "override", dict, None) or {})
    for legacy in ("activity", "source_replica_expression"):  # older clients send these beside override
        if body.get(legacy) is not None:
            override.setdefault(legacy, body[legacy])
    with unit_of_work() as session:
        authorize(session, "update_rule", rule_id=rule_id, options={"rse_expression": expression, **override})
        child = rule_update.move_rule(session, rule_id, expression, override)
    return created(json.dumps(child))


@bp.post("/rules/<rule_id>/reduce")
@doc(
    "Replace a rule by one with fewer copies, satisfied by the replicas in place; answers the new rule's id",
    body=schema_object(["copies"], copies={"type": "integer"}, exclude_expression=_NULLABLE_STRING),
)
def reduce_rule(rule_id: str) -> Response:
    body = json_object()
    copies = key(body, "copies", int)
    exclude = key(body, "exclude_expression", str, None)
    with unit_of_work() as session:
        authorize(session, "reduce_rule", rule_id=rule_id)
        new_rule = rule_reduce.reduce_rule(session, rule_id, copies, exclude)
    return created(json.dumps(new_rule))


@bp.get("/rules/<rule_id>/history")
@doc("A rule's state and lock counters each time they changed")
def rule_history(rule_id: str) -> Response:
    def rows(session: Session) -> Iterable[dict[str, Any]]:
        authorize(session, "read")
        return history.rule_history(session, rule_id)

    return stream(rows)


@bp.get("/rules/<scope>/<path:name>/history")
@doc("The history of every rule there ever was on a DID")
def did_rule_history(scope: str, name: str) -> Response:
    def rows(session: Session) -> Iterable[dict[str, Any]]:
        authorize(session, "read")
        return history.did_rule_history(session, scope, name)

    return stream(rows)


@bp.get("/rules/<rule_id>/analysis")
@doc("Why a rule is not OK: its error and, per stuck lock, the attempts, last outcome and possible sources")
def analyse_rule(rule_id: str) -> Response:
    with unit_of_work(read_only=True) as session:
        authorize(session, "read")
        analysis = rule_analysis.examine_rule(session, rule_id)
    return json_response(analysis)


@bp.delete("/rules/<rule_id>")
@doc(
    "Delete a rule softly, as Rucio does: it expires within the hour and the judge-cleaner removes it",
    body=schema_object(purge_replicas={"type": ["boolean", "null"]}),
)
def delete_rule(rule_id: str) -> Response:
    body = json_object(required=False)
    purge = key(body, "purge_replicas", bool, None)
    with unit_of_work() as session:
        account = authorize(session, "del_rule", rule_id=rule_id, purge_replicas=purge)
        rule_update.delete_rule(session, rule_id, issuer=account, purge_replicas=purge, soft=True)
    return done()


@bp.get("/rules/<rule_id>/locks")
@doc("The locks of a rule")
def list_locks(rule_id: str) -> Response:
    def rows(session: Session) -> Any:
        authorize(session, "read")
        yield from rules.list_rule_locks(session, rule_id)

    return stream(rows)


@bp.get("/accounts/<account>/rules")
@doc("Rules owned by an account")
def list_account_rules(account: str) -> Response:
    def rows(session: Session) -> Any:
        authorize(session, "read")
        yield from _with_bytes(session, rules.list_rules(session, {"account": account}))

    return stream(rows)


@bp.get("/dids/<scope>/<path:name>/associated_rules")
@doc("The rules that hold a file (with a lock on it), whatever DID they were made on")
def list_associated_rules(scope: str, name: str) -> Response:
    def rows(session: Session) -> Any:
        authorize(session, "read")
        did_columns(session, scope, name)  # DataIdentifierNotFound before the stream starts
        yield from _with_bytes(session, rules.list_associated_rules(session, scope, name))

    return stream(rows)


@bp.get("/dids/<scope>/<path:name>/rules")
@doc("Rules on a DID")
def list_did_rules(scope: str, name: str) -> Response:
    """Every rule here is on this DID, so each carries the DID's own bytes (no lookup per batch)."""

    def rows(session: Session) -> Any:
        authorize(session, "read")
        size = did_columns(session, scope, name).bytes
        for rule in rules.list_rules(session, {"scope": scope, "name": name}):
            yield {**rule, "bytes": size}

    return stream(rows)

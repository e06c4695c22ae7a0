"""``/config``: the run-time configuration table, for admins (Rucio's ``perm_config``)."""

from __future__ import annotations

from flask import Blueprint, Response

from datamgmt.api.context import authorize, unit_of_work
from datamgmt.api.openapi import doc
from datamgmt.api.params import json_object
from datamgmt.api.streaming import check_accept, created, done, json_response
from datamgmt.core import runtime_config

bp = Blueprint("config", __name__, url_prefix="/config")
JSON = "application/json"


@bp.get("")
@doc("Every section and option of the run-time configuration")
def get_all() -> Response:
    check_accept(JSON)
    with unit_of_work() as session:
        authorize(session, "config_items")
        return json_response(runtime_config.items(session))


@bp.post("")
@doc(
    "Set options: {section: {option: value}}",
    body={"type": "object", "additionalProperties": {"type": "object", "x-rucio-error": "ValueError"}},
)
def set_many() -> Response:
    options = json_object()
    with unit_of_work() as session:
        authorize(session, "config_set")
        runtime_config.set_options(session, options)
    return created()


@bp.get("/<section>")
@doc("The options of one section")
def get_section(section: str) -> Response:
    check_accept(JSON)
    with unit_of_work() as session:
        authorize(session, "config_items")
        return json_response(runtime_config.section_items(session, section))


@bp.delete("/<section>")
@doc("Remove a section with its options")
def remove_section(section: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "config_remove_section")
        runtime_config.remove_section(session, section)
    return done()


@bp.get("/<section>/<option>")
@doc("One option's value")
def get_option(section: str, option: str) -> Response:
    check_accept(JSON)
    with unit_of_work() as session:
        authorize(session, "config_get")
        return json_response(runtime_config.get(session, section, option))


@bp.delete("/<section>/<option>")
@doc("Remove one option")
def remove_option(section: str, option: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "config_remove_option")
        runtime_config.remove_option(session, section, option)
    return done()


@bp.put("/<section>/<option>/<value>")
@doc("Set one option from the path")
def set_option(section: str, option: str, value: str) -> Response:
    with unit_of_work() as session:
        authorize(session, "config_set")
        runtime_config.set_options(session, {section: {option: value}})
    return created()

"""``/dids`` writes that Rucio 41 adds to the basic ones in :mod:`datamgmt.api.v1.dids`:
following DIDs, samples, metadata of many DIDs, and taking back an expired lifetime."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from datamgmt.api.context import authorize, unit_of_work
from datamgmt.api.openapi import doc, schema_object
from datamgmt.api.params import dict_list, json_body, json_object, key
from datamgmt.api.streaming import JSON, created, done, stream
from datamgmt.core import did_follow, did_listing, metadata
from datamgmt.exceptions import MalformedRequest

bp = Blueprint("did_actions", __name__, url_prefix="/dids")

_ACCOUNT = schema_object(["account"], account={"type": "string"})
_SAMPLE = schema_object(
    ["input_scope", "input_name", "output_scope", "output_name", "nbfiles"],
    input_scope={"type": "string"},
    input_name={"type": "string"},
    output_scope={"type": "string"},
    output_name={"type": "string"},
    nbfiles={"type": ["integer", "string"]},
)


# --- followers -------------------------------------------------------------------------------
@bp.get("/<scope>/<path:name>/follow")
@doc("The accounts that follow a DID")
def followers(scope: str, name: str) -> Response:
    def rows(session: Any) -> Any:
        authorize(session, "read")
        yield from did_follow.followers(session, scope, name)

    # Rucio streams JSON lines under application/json here.
    return stream(rows, content_type=JSON)


@bp.post("/<scope>/<path:name>/follow")
@doc("Follow a DID (an admin may enrol another account)", body=_ACCOUNT)
def follow(scope: str, name: str) -> Response:
    account = key(json_object(), "account", str)
    with unit_of_work() as session:
        authorize(session, "follow_did", account=account)
        did_follow.follow(session, scope, name, account)
    return created()


@bp.delete("/<scope>/<path:name>/follow")
@doc("Stop following a DID", body=_ACCOUNT)
def unfollow(scope: str, name: str) -> Response:
    account = key(json_object(), "account", str)
    with unit_of_work() as session:
        authorize(session, "follow_did", account=account)
        did_follow.unfollow(session, scope, name, account)
    return done()


# --- samples ---------------------------------------------------------------------------------
def _sample(input_scope: Any, input_name: Any, output_scope: Any, output_name: Any, nbfiles: Any) -> Response:
    with unit_of_work() as session:
        account = authorize(session, "add_did", scope=output_scope)
        did_listing.create_sample(
            session, input_scope, input_name, output_scope, output_name, nbfiles, account
        )
    return created()


@bp.post("/sample")
@doc("A new dataset of files picked at random below a DID", body=_SAMPLE)
def sample() -> Response:
    body = json_object()
    return _sample(
        *(
            key(body, field)
            for field in ("input_scope", "input_name", "output_scope", "output_name", "nbfiles")
        )
    )


@bp.post("/<input_scope>/<input_name>/<output_scope>/<output_name>/<nbfiles>/sample")
@doc("A new dataset of files picked at random below a DID (Rucio's path form)")
def sample_by_path(
    input_scope: str, input_name: str, output_scope: str, output_name: str, nbfiles: str
) -> Response:
    return _sample(input_scope, input_name, output_scope, output_name, nbfiles)


# --- metadata of many DIDs, resurrection -----------------------------------------------------
@bp.post("/bulkdidsmeta")
@doc(
    "Set metadata on many DIDs",
    body=schema_object(["dids"], dids={"type": "array", "items": schema_object(["scope", "name", "meta"])}),
)
def set_bulk_meta() -> Response:
    items = dict_list(json_object(), "dids")
    with unit_of_work() as session:
        authorize(session, "set_metadata", scopes=sorted({str(item.get("scope")) for item in items}))
        metadata.set_dids_metadata_bulk(session, items)
    return created()


@bp.post("/resurrect")
@doc(
    "Take back the passed lifetime of DIDs (admins)",
    body={"type": "array", "items": schema_object(["scope", "name"])},
)
def resurrect() -> Response:
    items = json_body()
    if not isinstance(items, list):
        raise MalformedRequest("the body must be a list of DIDs")
    keys = did_listing.did_keys(items)
    with unit_of_work() as session:
        authorize(session, "resurrect")
        did_listing.resurrect(session, keys)
    return created()

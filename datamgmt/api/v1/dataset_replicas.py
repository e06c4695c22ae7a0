"""Dataset-level replica summaries (``/replicas/<scope>/<name>/datasets``, ``/datasets_bulk``,
``/rse/<rse>``), the DIDs behind PFNs (``/replicas/dids``) and Rucio's virtual-placement probe."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response
from sqlalchemy.orm import Session

from datamgmt.api.context import authorize
from datamgmt.api.openapi import doc, schema_object
from datamgmt.api.params import dict_list, json_object, key
from datamgmt.api.streaming import stream
from datamgmt.core import dataset_replica
from datamgmt.core.replica_path import replicas_at_pfns
from datamgmt.core.rse import get_rse_id
from datamgmt.exceptions import InputValidationError, InvalidType

bp = Blueprint("dataset_replicas", __name__, url_prefix="/replicas")

_DEEP = {"deep": {"type": "boolean"}}


@bp.get("/<scope>/<path:name>/datasets")
@doc(
    "How much of a dataset each RSE holds (always computed from the file replicas, as Rucio's deep mode)",
    query=_DEEP,
)
def dataset_replicas(scope: str, name: str) -> Response:
    def rows(session: Session) -> Any:
        authorize(session, "read")
        return dataset_replica.dataset_replicas(session, [(scope, name)])

    return stream(rows)


@bp.get("/<scope>/<path:name>/datasets_vp")
@doc(
    "Rucio's virtual-placement sites for a dataset: we run no VP service, so Rucio's answer without one",
    query=_DEEP,
)
def dataset_replicas_vp(scope: str, name: str) -> Response:
    def rows(session: Session) -> Any:
        authorize(session, "read")
        return ["other"]

    return stream(rows)


_BULK_BODY = schema_object(
    ["dids"],
    dids={
        "type": "array",
        "items": schema_object(["scope", "name"], scope={"type": "string"}, name={"type": "string"}),
    },
)


@bp.post("/datasets_bulk")
@bp.post("/datasets_bulk/")
@doc("Dataset replicas of many datasets at once", body=_BULK_BODY)
def dataset_replicas_bulk() -> Response:
    dids = dict_list(json_object(), "dids")
    if not dids:
        raise InputValidationError("List of DIDs is empty")
    keys = []
    for did in dids:
        if not isinstance(did.get("scope"), str) or not isinstance(did.get("name"), str):
            raise InvalidType("each DID needs a scope and a name")
        keys.append((did["scope"], did["name"]))

    def rows(session: Session) -> Any:
        authorize(session, "read")
        return dataset_replica.dataset_replicas(session, keys)

    return stream(rows)


@bp.get("/rse/<rse>")
@bp.get("/rse/<rse>/")
@doc("Every dataset an RSE holds files of, with how much of it")
def datasets_on_rse(rse: str) -> Response:
    def rows(session: Session) -> Any:
        authorize(session, "read")
        return dataset_replica.datasets_on_rse(session, get_rse_id(session, rse))

    return stream(rows)


_DIDS_BODY = schema_object(
    ["pfns"],
    pfns={"type": "array", "items": {"type": "string"}, "x-rucio-error": "InvalidType"},
    rse={"type": ["string", "null"]},
)


@bp.post("/dids")
@bp.post("/dids/")
@doc("The DIDs of the replicas at PFNs, one {pfn: {scope, name}} line each", body=_DIDS_BODY)
def dids_of_pfns() -> Response:
    body = json_object()
    pfns = key(body, "pfns", list, [])
    rse = key(body, "rse", str, None)

    def rows(session: Session) -> Any:
        authorize(session, "read")
        found, _ = replicas_at_pfns(session, pfns)
        only = get_rse_id(session, rse) if rse else None
        return [
            {pfn: {"scope": scope, "name": name}}
            for rse_id, entries in found.items()
            if only in (None, rse_id)
            for scope, name, pfn in entries
        ]

    return stream(rows)

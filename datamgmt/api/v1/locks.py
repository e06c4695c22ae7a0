"""``/locks``: dataset locks by RSE, by dataset and in bulk, as Rucio's lock client asks for them."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session

from datamgmt.api.context import authorize
from datamgmt.api.openapi import doc, schema_object
from datamgmt.api.params import dict_list, json_object
from datamgmt.api.streaming import stream
from datamgmt.core import dataset_lock
from datamgmt.core.rse import get_rse_id
from datamgmt.core.validation import shown
from datamgmt.exceptions import InputValidationError

bp = Blueprint("locks", __name__, url_prefix="/locks")


def _dataset_type_only() -> None:
    # Rucio lists dataset locks only and answers any other did_type with a bare 500; ours is a 400.
    did_type = request.args.get("did_type")
    if did_type != "dataset":
        raise InputValidationError(f"did_type must be 'dataset', not {shown(did_type)}")


@bp.get("/<rse>")
@doc("The dataset locks on one RSE (``did_type=dataset``)")
def locks_on_rse(rse: str) -> Response:
    def rows(session: Session) -> Any:
        authorize(session, "read")
        _dataset_type_only()
        return dataset_lock.dataset_locks_on_rse(session, get_rse_id(session, rse))

    return stream(rows)


@bp.get("/<scope>/<path:name>")
@doc("The dataset locks of one dataset (``did_type=dataset``)")
def locks_of_dataset(scope: str, name: str) -> Response:
    def rows(session: Session) -> Any:
        authorize(session, "read")
        _dataset_type_only()
        return dataset_lock.dataset_locks_of(session, [(scope, name)])

    return stream(rows)


_BULK_BODY = schema_object(
    ["dids"],
    dids={
        "type": "array",
        "items": schema_object(["scope", "name"], scope={"type": "string"}, name={"type": "string"}),
    },
)


@bp.post("/bulk_locks_for_dids")
@doc("The dataset locks of datasets and of the datasets below containers", body=_BULK_BODY)
def locks_for_dids() -> Response:
    dids = dict_list(json_object(), "dids")
    keys = [(str(did.get("scope")), str(did.get("name"))) for did in dids]

    def rows(session: Session) -> Any:
        authorize(session, "read")
        return dataset_lock.dataset_locks_for_dids(session, keys)

    return stream(rows)

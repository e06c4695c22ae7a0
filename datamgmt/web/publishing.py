"""Publishing pages of ``/ui/``: a dataset's citation metadata, publish, new version, withdraw.

The form edits the metadata keys the crosswalks read (``datamgmt.publishing.datacite`` and
``dublincore``), and every action goes through the same core calls and policy actions as REST
(``set_metadata``/``delete_metadata``, ``publish_did``, ``unpublish_did``); publishing itself is
REST's own :func:`datamgmt.api.v1.publishing.publish_share`, with its PID compensation.
"""

from __future__ import annotations

from typing import Any

from flask import g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from datamgmt.api.context import authorize, unit_of_work
from datamgmt.api.v1.publishing import base_url, publish_share
from datamgmt.core import did as dids
from datamgmt.core import metadata, pid
from datamgmt.core.permission import has_permission
from datamgmt.exceptions import InputValidationError, ShareNotFound
from datamgmt.publishing.datacite import RESOURCE_TYPES_GENERAL
from datamgmt.web.common import bp

#: The form's fields: metadata key, label, and what the crosswalks make of it.
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("title", "Title", "DataCite title, dc:title (required)"),
    (
        "creator",
        "Creators",
        "'Family, Given' names separated by ';': DataCite creators, dc:creator (required)",
    ),
    ("publisher", "Publisher", "DataCite publisher, dc:publisher (required)"),
    ("publication_year", "Publication year", "four digits; the year of publishing when empty"),
    ("resource_type_general", "Resource type (DataCite)", "DataCite resourceTypeGeneral"),
    ("type", "Type", "dc:type and DataCite resourceType"),
    ("subject", "Subjects", "separated by ';': DataCite subjects, dc:subject"),
    ("description", "Description", "DataCite abstract, dc:description"),
    ("date", "Date", "YYYY-MM-DD: DataCite date issued, dc:date"),
    ("language", "Language", "e.g. en: DataCite language, dc:language"),
    ("rights", "Rights", "licence or rights statement: DataCite rightsList, dc:rights"),
)
KEYS = tuple(key for key, _, _ in FIELDS)
ACTIONS = ("save", "publish", "update", "withdraw")


def _text(value: Any) -> str | None:
    """A metadata value as the form shows it, or None for a structured one (creators with ORCID iDs
    set as JSON) that a text field would flatten: those stay as they are, edited with the CLI."""
    if isinstance(value, list):
        return (
            "; ".join(str(item) for item in value)
            if all(not isinstance(i, dict | list) for i in value)
            else None
        )
    if isinstance(value, dict):
        return None
    return "" if value is None else str(value)


@bp.get("/publishing/<scope>/<path:name>")
def publishing_page(scope: str, name: str) -> str:
    with unit_of_work() as catalogue:
        authorize(catalogue, "read")
        did = dids.get_did(catalogue, scope, name)
        values = metadata.get_metadata(catalogue, scope, name, plugin="JSON")
        try:
            share: dict[str, Any] | None = pid.get_share(catalogue, scope, name)
        except ShareNotFound:
            share = None
        may_edit = has_permission(catalogue, g.issuer, "set_metadata", {"scope": scope})
    shown = {key: _text(values.get(key)) for key in KEYS}
    return render_template(
        "publishing.html",
        did=did,
        fields=FIELDS,
        values=shown,
        share=share,
        may_edit=may_edit,
        resource_types=sorted(RESOURCE_TYPES_GENERAL),
    )


@bp.post("/publishing/<scope>/<path:name>")
def publishing_action(scope: str, name: str) -> Response:
    action = request.form.get("action")
    if action not in ACTIONS:
        raise InputValidationError(f"The action must be one of {', '.join(ACTIONS)}.")
    if action == "save":
        _save(scope, name)
    elif action == "publish":
        publish_share(scope, name)
    else:
        with unit_of_work(read_only=False) as catalogue:
            authorize(catalogue, "publish_did" if action == "update" else "unpublish_did", scope=scope)
            change = pid.update_share if action == "update" else pid.unpublish
            change(catalogue, scope, name, base_url())
    return redirect(url_for("ui.publishing_page", scope=scope, name=name))


def _save(scope: str, name: str) -> None:
    """Set the fields filled in and remove those emptied; structured values the form did not show
    are left alone (their fields are not sent)."""
    sent = {key: request.form[key].strip() for key in KEYS if key in request.form}
    with unit_of_work(read_only=False) as catalogue:
        authorize(catalogue, "set_metadata", scope=scope)
        current = metadata.get_metadata(catalogue, scope, name, plugin="JSON")
        changed = {key: text for key, text in sent.items() if text and _text(current.get(key)) != text}
        if changed:
            metadata.set_metadata_bulk(catalogue, scope, name, changed)
        emptied = [key for key, text in sent.items() if not text and key in current]
        if emptied:
            authorize(catalogue, "delete_metadata", scope=scope)
            for key in emptied:  # at most len(FIELDS) keys of one DID
                metadata.delete_metadata(catalogue, scope, name, key)

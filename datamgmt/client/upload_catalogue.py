"""What an upload asks of the catalogue: what is there already, registration, and its rule.

Kept apart from the storage side (``uploads``) because each step here is one bulk call per
chunk of files, chosen so that a rerun of the same upload finds its own earlier work and
neither repeats nor refuses it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from datamgmt.exceptions import AccessDenied, DataIdentifierAlreadyExists, DuplicateRule

if TYPE_CHECKING:
    from datamgmt.client.client import Client

#: Files per registration call: SQLite refuses much larger statements (docs/rucio-compatibility.md).
REGISTER_CHUNK = 500
#: Characters the server's name patterns treat as wildcards: a name prefix stops before them.
_WILDCARDS = "*%_"


@dataclass
class CatalogueFile:
    """A file DID that exists already: its registered checksums and its replicas' states by RSE."""

    bytes: int | None
    adler32: str | None
    md5: str | None
    states: dict[str, str] = field(default_factory=dict)


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), REGISTER_CHUNK):
        yield values[start : start + REGISTER_CHUNK]


def existing_files(client: Client, scope: str, names: Sequence[str]) -> dict[str, CatalogueFile]:
    """The files among ``names`` that the catalogue knows, in a few bulk calls.

    One name search over the names' common prefix finds which exist (listing replicas of a
    missing DID is an error), then their replicas are listed in chunks.
    """
    if not names:
        return {}
    prefix = os.path.commonprefix(list(names))
    for wildcard in _WILDCARDS:
        prefix = prefix.split(wildcard, 1)[0]
    wanted = set(names)
    found = sorted(
        name
        for name in (
            row["name"] if isinstance(row, dict) else row
            for row in client.search_dids(scope, "type=file", name=f"{prefix}*", long=False)
        )
        if name in wanted
    )
    files: dict[str, CatalogueFile] = {}
    for part in _chunks(found):
        for replica in client.list_replicas([(scope, name) for name in part], all_states=True):
            files[replica["name"]] = CatalogueFile(
                replica.get("bytes"),
                replica.get("adler32"),
                replica.get("md5"),
                dict(replica.get("states") or {}),
            )
    return files


def replica_record(
    scope: str, name: str, size: int, adler32: str, md5: str, state: str, guid: str | None = None
) -> dict[str, Any]:
    return {
        "scope": scope,
        "name": name,
        "bytes": size,
        "adler32": adler32,
        "md5": md5,
        "meta": {"guid": guid or uuid.uuid4().hex},
        "state": state,
    }


def register(client: Client, rse: str, records: Sequence[dict[str, Any]]) -> None:
    """Register replicas in chunks; a refusal says which scopes the account may write to."""
    try:
        for part in _chunks(records):
            client.add_replicas(rse, part)
    except AccessDenied as error:
        scopes = ", ".join(client.list_scopes(client.account)) or "none"
        raise AccessDenied(
            f"{error.message}. Account {client.account} may upload to scopes: {scopes}; "
            f"and only to RSEs open to user uploads"
        ) from error


def set_available(client: Client, rse: str, scope: str, names: Sequence[str]) -> None:
    for part in _chunks(list(names)):
        client.update_replicas_state(rse, [{"scope": scope, "name": name, "state": "A"} for name in part])


def attach(client: Client, dataset: tuple[str, str], dids: Sequence[tuple[str, str]]) -> None:
    """Attach what is not attached yet: a rerun, or a second replica, finds its files there."""
    attached: set[tuple[str, str]] = set()
    try:
        client.add_did(dataset[0], dataset[1], "DATASET")
    except DataIdentifierAlreadyExists:
        attached = {(child["scope"], child["name"]) for child in client.list_content(*dataset)}
    missing = [did for did in dids if did not in attached]
    for part in _chunks(missing):
        client.attach(*dataset, part)


def ensure_rule(
    client: Client, targets: Sequence[tuple[str, str]], copies: int, rse_expression: str, lifetime: int | None
) -> list[str]:
    """The rules protecting ``targets``: made now, or found when a first run made them already.

    A rerun of an upload asks for the same rule again; the account's existing rules on the
    same expression are reused instead of failing with DuplicateRule.
    """
    try:
        return list(client.add_rule(targets, copies, rse_expression, lifetime=lifetime))
    except DuplicateRule:
        pass
    wanted = set(targets)
    existing = {
        (rule["scope"], rule["name"]): rule["id"]
        for rule in client.list_account_rules(client.account)
        if (rule["scope"], rule["name"]) in wanted
        and rule.get("rse_expression") == rse_expression
        and rule.get("copies") == copies
    }
    missing = [did for did in targets if did not in existing]
    made = list(client.add_rule(missing, copies, rse_expression, lifetime=lifetime)) if missing else []
    return sorted(set(existing.values())) + made

"""Export and import of the catalogue's set-up (Rucio's ``/export`` and ``/import``).

Export is Rucio's document, keyed by name: ``rses`` (each with its flags, ``attributes``,
``protocols``, ``lfn2pfn_algorithm``, ``verify_checksum`` and ``MinFreeSpace``) and
``distances`` (``{source: {destination: {...}}}``); we add ``accounts`` (name, type, email and
identities, never secrets), which Rucio imports but does not export, so a document round-trips.
Each part is one query per table.

Import follows Rucio's importer: RSEs are created or updated, their protocols and attributes
synchronised, distances set, accounts created or updated with their identities, and accounts
missing from a document that lists accounts are deleted (root excepted).  ``[importer]
rse_sync_method`` and ``attr_sync_method`` (``append``, ``edit`` (default) or ``hard``) are read
from the run-time config as Rucio reads them: ``append`` never changes what exists, ``hard``
also removes RSEs, protocols and attributes the document does not name.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from datamgmt.core import rse as rses
from datamgmt.core import rse_distance, runtime_config
from datamgmt.core.account import add_account, delete_account, update_account
from datamgmt.core.db.constants import AccountStatus, IdentityType
from datamgmt.core.db.models import (
    RSE,
    Account,
    AccountIdentity,
    Distance,
    Identity,
    RSEAttribute,
    RSELimit,
    RSEProtocol,
)
from datamgmt.core.identity import add_account_identity, del_account_identity
from datamgmt.core.rse import protocol_record
from datamgmt.core.validation import shown
from datamgmt.exceptions import InvalidObject

#: RSE flags an import may set (Rucio's ``MUTABLE_RSE_PROPERTIES`` that we keep).
RSE_FLAGS = (
    "rse_type",
    "deterministic",
    "volatile",
    "staging_area",
    "availability_read",
    "availability_write",
    "availability_delete",
)
#: Attributes the export folds into RSE fields, as Rucio's does.
FOLDED = ("lfn2pfn_algorithm", "verify_checksum")
SYNC_METHODS = ("append", "edit", "hard")


# --- export ----------------------------------------------------------------------------------
def export_data(session: Session, distance: bool = True) -> dict[str, Any]:
    live = select(RSE).where(RSE.deleted.is_(False)).order_by(RSE.rse)
    found: dict[str, dict[str, Any]] = {}
    names: dict[str, str] = {}
    for row in session.scalars(live):
        names[row.id] = row.rse
        found[row.rse] = {
            "id": row.id,
            "rse": row.rse,
            "rse_type": row.rse_type.name,
            "deterministic": row.deterministic,
            "volatile": row.volatile,
            "staging_area": row.staging_area,
            "availability_read": row.availability_read,
            "availability_write": row.availability_write,
            "availability_delete": row.availability_delete,
            "credentials": None,
            "attributes": {},
            "protocols": [],
            "MinFreeSpace": None,
            "lfn2pfn_algorithm": None,
            "verify_checksum": None,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }
    for rse_id, key, value in session.execute(
        select(RSEAttribute.rse_id, RSEAttribute.key, RSEAttribute.value)
    ):
        if rse_id in names:
            found[names[rse_id]]["attributes"][key] = rses.attr_value(value)
            if key in FOLDED:
                found[names[rse_id]][key] = rses.attr_value(value)
    for protocol in session.scalars(
        select(RSEProtocol).order_by(RSEProtocol.scheme, RSEProtocol.hostname, RSEProtocol.port)
    ):
        if protocol.rse_id in names:
            found[names[protocol.rse_id]]["protocols"].append(protocol_record(protocol))
    for rse_id, value in session.execute(
        select(RSELimit.rse_id, RSELimit.value).where(RSELimit.name == "MinFreeSpace")
    ):
        if rse_id in names:
            found[names[rse_id]]["MinFreeSpace"] = value
    data: dict[str, Any] = {"rses": found}
    if distance:
        data["distances"] = _export_distances(session, names)
    data["accounts"] = _export_accounts(session)
    return data


def _export_distances(session: Session, names: dict[str, str]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    for row in session.scalars(select(Distance)):
        if row.src_rse_id in names and row.dest_rse_id in names:
            result.setdefault(names[row.src_rse_id], {})[names[row.dest_rse_id]] = {
                "src_rse_id": row.src_rse_id,
                "dest_rse_id": row.dest_rse_id,
                "distance": row.distance,
                "ranking": row.distance,
                "created_at": row.created_at,
                "updated_at": row.updated_at,
            }
    return result


def _export_accounts(session: Session) -> list[dict[str, Any]]:
    accounts: dict[str, dict[str, Any]] = {
        row.account: {
            "account": row.account,
            "type": row.account_type.name,
            "email": row.email,
            "identities": [],
        }
        for row in session.scalars(
            select(Account).where(Account.status != AccountStatus.DELETED).order_by(Account.account)
        )
    }
    live = aliased(Identity)
    mapped = (
        select(AccountIdentity.account, AccountIdentity.identity, AccountIdentity.identity_type)
        .join(
            live,
            (live.identity == AccountIdentity.identity)
            & (live.identity_type == AccountIdentity.identity_type),
        )
        .where(live.deleted.is_(False))
        .order_by(AccountIdentity.identity)
    )
    for account, identity, kind in session.execute(mapped):
        if account in accounts:
            accounts[account]["identities"].append({"identity": identity, "type": kind.name})
    return list(accounts.values())


# --- import ----------------------------------------------------------------------------------
def _sync_method(session: Session, option: str) -> str:
    method = runtime_config.get_text(session, "importer", option) or "edit"
    return method if method in SYNC_METHODS else "edit"


def _mapping(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(item, dict) for item in value.values()):
        raise InvalidObject(f"Provided object does not match schema: {what} must map names to objects")
    return value


def import_data(session: Session, data: object) -> None:
    if not isinstance(data, dict):
        raise InvalidObject("Provided object does not match schema: the document must be an object")
    if data.get("rses"):
        _import_rses(
            session,
            _mapping(data["rses"], "rses"),
            _sync_method(session, "rse_sync_method"),
            _sync_method(session, "attr_sync_method"),
        )
    if data.get("distances"):
        for source, destinations in _mapping(data["distances"], "distances").items():
            for destination, entry in _mapping(destinations, f"distances of {shown(source)}").items():
                if not isinstance(entry, dict):
                    raise InvalidObject("Provided object does not match schema: a distance must be an object")
                rse_distance.set_distance(
                    session, source, destination, entry.get("distance", entry.get("ranking"))
                )
    if data.get("accounts"):
        accounts = data["accounts"]
        if not isinstance(accounts, list) or not all(
            isinstance(a, dict) and isinstance(a.get("account"), str) for a in accounts
        ):
            raise InvalidObject(
                "Provided object does not match schema: accounts must be a list of {account, email}"
            )
        _import_accounts(session, accounts)


def _import_rses(
    session: Session, documents: dict[str, dict[str, Any]], rse_sync: str, attr_sync: str
) -> None:
    existing = {row.rse: row for row in session.scalars(select(RSE).where(RSE.deleted.is_(False)))}
    for name, document in documents.items():
        flags = {flag: document[flag] for flag in RSE_FLAGS if document.get(flag) is not None}
        if name not in existing:
            rses.add_rse(
                session,
                name,
                **{
                    k: flags.pop(k)
                    for k in ("rse_type", "deterministic", "volatile", "staging_area")
                    if k in flags
                },
            )
            if flags:
                rses.update_rse(session, name, flags)
        elif rse_sync != "append" and flags:
            rses.update_rse(session, name, flags)
        _import_protocols(session, name, document.get("protocols"), rse_sync)
        if document.get("MinFreeSpace"):
            rses.set_rse_limits(session, name, "MinFreeSpace", document["MinFreeSpace"])
        _import_attributes(session, name, document, attr_sync)
    if rse_sync == "hard":
        for name in existing.keys() - documents.keys():
            rses.delete_rse(session, name)


def _import_protocols(session: Session, rse: str, protocols: object, method: str) -> None:
    if not protocols:
        return
    if not isinstance(protocols, list) or not all(isinstance(p, dict) for p in protocols):
        raise InvalidObject(
            f"Provided object does not match schema: the protocols of {shown(rse)} must be a list"
        )
    old = {(p["scheme"], p["hostname"], p["port"]) for p in rses.list_protocols(session, rse)}
    new = set()
    for protocol in protocols:
        ident = (protocol.get("scheme"), str(protocol.get("hostname") or ""), int(protocol.get("port") or 0))
        new.add(ident)
        if ident not in old:
            rses.add_protocol(session, rse, protocol)
        elif method != "append":
            changes = {
                k: v for k, v in protocol.items() if k in ("prefix", "impl", "domains", "extended_attributes")
            }
            if changes:
                rses.update_protocol(session, rse, ident[0], ident[1], ident[2], changes)
    if method == "hard":
        for scheme, hostname, port in old - new:
            rses.del_protocol(session, rse, scheme, hostname, port)


def _import_attributes(session: Session, rse: str, document: dict[str, Any], method: str) -> None:
    attributes = dict(document.get("attributes") or {})
    if not isinstance(document.get("attributes") or {}, dict):
        raise InvalidObject(
            f"Provided object does not match schema: the attributes of {shown(rse)} must be an object"
        )
    attributes.update({key: document[key] for key in FOLDED if document.get(key) is not None})
    old = rses.list_rse_attributes(session, rse)
    for key, value in attributes.items():
        if value is None or (key in old and method == "append"):
            continue
        rses.add_rse_attribute(session, rse, key, value)
    if method == "hard":
        for key in old.keys() - attributes.keys() - {rse}:
            rses.del_rse_attribute(session, rse, key)


def _import_accounts(session: Session, documents: list[dict[str, Any]]) -> None:
    existing = {
        row.account: row
        for row in session.scalars(select(Account).where(Account.status != AccountStatus.DELETED))
    }
    mapped = set(
        session.execute(
            select(AccountIdentity.identity, AccountIdentity.identity_type, AccountIdentity.account)
        ).tuples()
    )
    for document in documents:
        account, email = document["account"], document.get("email")
        if account not in existing:
            add_account(session, account, "USER", email)
        elif email and existing[account].email != email:
            update_account(session, account, "email", email)
        identities = document.get("identities") or []
        if not isinstance(identities, list) or not all(isinstance(i, dict) for i in identities):
            raise InvalidObject(
                "Provided object does not match schema: identities must be a list of {identity, type}"
            )
        wanted = {
            (i.get("identity"), IdentityType.parse(i.get("type") or ""), account): i for i in identities
        }
        for key, identity in wanted.items():
            if key not in mapped:
                add_account_identity(
                    session, key[0], key[1].name, account, email=email, password=identity.get("password")
                )
        for identity, kind, owner in mapped:
            if owner == account and (identity, kind, owner) not in wanted:
                del_account_identity(session, identity, kind.name, account)
    for account in existing.keys() - {d["account"] for d in documents} - {"root"}:
        delete_account(session, account)

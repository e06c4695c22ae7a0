"""PID services and shares: publishing datasets and containers under a persistent identifier.

A share is a published DID.  Publishing mints a PID at the DID's PID service (the
embedded ``local`` one, a Handle server or DataCite) pointing at our landing page
``<base_url>/pid/<pid>``; unpublishing keeps the share as a tombstone, so the PID
still resolves (to a "withdrawn" page) and OAI-PMH reports a deleted record.

Ordering hazard: minting is a remote call made inside the caller's transaction, and
it cannot be rolled back.  ``publish`` flushes the share row right after minting and,
if that fails, withdraws the fresh PID before re-raising; a failure later, at commit,
is the caller's to compensate with :func:`withdraw_orphan` (the API does).  Withdrawal
rather than deletion because DataCite only deletes drafts and Handle PIDs are meant to
stay; a withdrawn orphan resolves to a landing page that says nothing was published.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC
from functools import lru_cache
from itertools import groupby
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from datamgmt.core import validation
from datamgmt.core.db.constants import DIDType, PIDServiceType, ShareState
from datamgmt.core.db.models import RSE, Content, DataIdentifier, PIDService, Replica, Share
from datamgmt.core.db.types import new_id, utcnow
from datamgmt.core.did import COLLECTIONS, did_str, get_did_row
from datamgmt.core.keys import chunks, keys_in
from datamgmt.core.metadata import key_values
from datamgmt.exceptions import (
    Duplicate,
    InputValidationError,
    PIDAlreadyExists,
    PIDServiceNotFound,
    ShareNotFound,
    UnsupportedOperation,
)
from datamgmt.pid import PIDClient, make_pid_client
from datamgmt.pid.local import random_suffix
from datamgmt.publishing.datacite import missing_mandatory
from datamgmt.publishing.records import (
    SET_TAG,
    FileEntry,
    PIDType,
    ShareRecord,
    pid_service_set_spec,
    scope_set_spec,
)

PID_TYPES: dict[PIDServiceType, PIDType] = {
    PIDServiceType.LOCAL: "local",
    PIDServiceType.HANDLE: "handle",
    PIDServiceType.DATACITE: "doi",
}
#: Client options an admin may set per service (TLS trust, Handle admin identity).
SERVICE_OPTIONS = frozenset({"verify", "admin_handle", "admin_index", "timeout"})
#: Metadata keys that hold several values separated by ``;`` ("Doe, Jane; Roe, Richard").
LIST_KEYS = frozenset({"creator", "creators", "subject", "subjects"})
MINT_ATTEMPTS = 3
LANDING_FILE_LIMIT = 1000


# --- PID services ----------------------------------------------------------------------------
def _service_dict(row: PIDService) -> dict[str, Any]:
    """A service as admins see it: the secret is never returned, only whether one is set."""
    return {
        "name": row.name,
        "type": row.service_type.value,
        "endpoint": row.endpoint,
        "prefix": row.prefix,
        "username": row.username,
        "has_secret": row.secret is not None,
        "is_default": row.is_default,
        "options": json.loads(row.options) if row.options else {},
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def add_pid_service(
    session: Session,
    name: str,
    service_type: str,
    prefix: str,
    endpoint: str | None = None,
    username: str | None = None,
    secret: str | None = None,
    options: Mapping[str, Any] | None = None,
    is_default: bool = False,
) -> None:
    """Configure a PID service; Handle and DataCite ones need an endpoint and credentials."""
    if not isinstance(name, str) or len(name) > 64 or not SET_TAG.fullmatch(name):
        raise InputValidationError(f"invalid PID service name {validation.shown(name)}: it names an OAI set")
    kind = PIDServiceType.parse(service_type)
    if not isinstance(prefix, str) or not prefix or "/" in prefix or len(prefix) > 255:
        raise InputValidationError(f"invalid PID prefix {validation.shown(prefix)}")
    if kind != PIDServiceType.LOCAL and not (endpoint and username and secret):
        raise InputValidationError(f"a {kind.value} PID service needs an endpoint, a username and a secret")
    unknown = set(options or {}) - SERVICE_OPTIONS
    if unknown:
        raise InputValidationError(f"unknown PID service options: {', '.join(sorted(unknown))}")
    if session.get(PIDService, name) is not None:
        raise Duplicate(f"PID service {validation.shown(name)} already exists")
    if is_default:
        session.execute(update(PIDService).values(is_default=False))
    session.add(
        PIDService(
            name=name,
            service_type=kind,
            prefix=prefix,
            endpoint=endpoint,
            username=username,
            secret=secret,
            options=json.dumps(dict(options)) if options else None,
            is_default=bool(is_default),
        )
    )
    session.flush()


def _service_row(session: Session, name: str | None) -> PIDService:
    if name is None:
        row = session.scalars(select(PIDService).where(PIDService.is_default.is_(True))).first()
        if row is None:
            raise PIDServiceNotFound("no default PID service is configured")
        return row
    row = session.get(PIDService, name) if isinstance(name, str) else None
    if row is None:
        raise PIDServiceNotFound(f"PID service {validation.shown(name)} not found")
    return row


def get_pid_service(session: Session, name: str) -> dict[str, Any]:
    return _service_dict(_service_row(session, name))


def list_pid_services(session: Session) -> list[dict[str, Any]]:
    return [_service_dict(row) for row in session.scalars(select(PIDService).order_by(PIDService.name))]


def delete_pid_service(session: Session, name: str) -> None:
    """Remove a service no share was ever published through (their PIDs live there for good)."""
    row = _service_row(session, name)
    if session.scalar(select(func.count()).select_from(Share).where(Share.pid_service == name)):
        raise UnsupportedOperation(
            f"PID service {validation.shown(name)} holds the PIDs of shares and cannot be deleted"
        )
    session.delete(row)
    session.flush()


def landing_url(base_url: str, pid: str) -> str:
    return f"{base_url.rstrip('/')}/pid/{pid}"


def pid_client(row: PIDService, base_url: str) -> PIDClient:
    """The client of ``datamgmt.pid`` for a service row; local PIDs resolve at ``base_url``."""
    if row.service_type == PIDServiceType.LOCAL:
        return make_pid_client(
            "local", {"prefix": row.prefix, "resolver_url": landing_url(base_url, "{pid}")}
        )
    options = json.loads(row.options) if row.options else {}
    properties = {
        "endpoint": row.endpoint,
        "prefix": row.prefix,
        "username": row.username,
        "password": row.secret,
    }
    return make_pid_client(row.service_type.value, {**properties, **options})


# --- share records ---------------------------------------------------------------------------
def _descriptive(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Key-value metadata as the crosswalks read it: text values, ``;`` lists split, lists and objects as they are."""
    result: dict[str, Any] = {}
    for key, value in meta.items():
        if isinstance(value, list | dict):  # structured metadata (creators with ORCID...) stays structured
            result[key] = value
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif hasattr(value, "isoformat"):
            text = value.date().isoformat() if value.time() == value.min.time() else value.isoformat() + "Z"
        else:
            text = str(value)
        result[key] = [part.strip() for part in text.split(";") if part.strip()] if key in LIST_KEYS else text
    return result


def _files_of(session: Session, roots: Sequence[tuple[str, str]]) -> dict[tuple[str, str], list[FileEntry]]:
    """The files below many collections at once: one recursive query per chunk of roots."""
    found: dict[tuple[str, str], list[FileEntry]] = defaultdict(list)
    for part in chunks(list(dict.fromkeys(roots)), 500):
        base = select(
            Content.scope.label("root_scope"),
            Content.name.label("root_name"),
            Content.child_scope,
            Content.child_name,
            Content.child_type,
            Content.bytes,
            Content.adler32,
        ).where(keys_in((Content.scope, Content.name), part))
        tree = base.cte("share_tree", recursive=True)
        step = select(
            tree.c.root_scope,
            tree.c.root_name,
            Content.child_scope,
            Content.child_name,
            Content.child_type,
            Content.bytes,
            Content.adler32,
        ).join(tree, and_(Content.scope == tree.c.child_scope, Content.name == tree.c.child_name))
        tree = tree.union(step)
        rows = session.execute(
            select(
                tree.c.root_scope,
                tree.c.root_name,
                tree.c.child_scope,
                tree.c.child_name,
                tree.c.bytes,
                tree.c.adler32,
            )
            .where(tree.c.child_type == DIDType.FILE)
            .distinct()
            .order_by(tree.c.root_scope, tree.c.root_name, tree.c.child_scope, tree.c.child_name)
        )
        for (root_scope, root_name), group in groupby(rows, key=lambda r: (r[0], r[1])):
            found[(root_scope, root_name)] = [
                FileEntry(did_str(scope, name), size or 0, adler or "")
                for _, _, scope, name, size, adler in group
            ]
    return found


def share_records(session: Session, shares: Sequence[Share]) -> list[ShareRecord]:
    """ShareRecords for many shares with a fixed number of queries (metadata, files, services)."""
    keys = [(share.scope, share.name) for share in shares]
    meta = key_values(session, keys)
    live = [(share.scope, share.name) for share in shares if share.state == ShareState.PUBLISHED]
    files = _files_of(session, live)
    kinds = service_kinds(session)
    did_types: dict[tuple[str, str], DIDType] = {}
    for part in chunks(keys, 1000):
        rows = session.execute(
            select(DataIdentifier.scope, DataIdentifier.name, DataIdentifier.did_type).where(
                keys_in((DataIdentifier.scope, DataIdentifier.name), part)
            )
        )
        did_types.update({(scope, name): kind for scope, name, kind in rows})
    return [
        ShareRecord(
            share_id=share.id,
            scope=share.scope,
            name=share.name,
            did_type=_type_name(did_types, share),
            pid=share.pid,
            pid_type=PID_TYPES[kinds[share.pid_service]],
            pid_service=share.pid_service,
            landing_url=share.landing_url,
            datestamp=share.datestamp.replace(tzinfo=UTC),
            deleted=share.state == ShareState.WITHDRAWN,
            metadata=_descriptive(meta[(share.scope, share.name)]),
            files=files.get((share.scope, share.name), ()),
            sets=(scope_set_spec(share.scope), pid_service_set_spec(share.pid_service)),
        )
        for share in shares
    ]


def _type_name(did_types: Mapping[Any, DIDType], share: Share) -> str:
    kind = did_types.get((share.scope, share.name))
    return kind.name if kind is not None and kind in COLLECTIONS else "DATASET"


def snapshot(record: ShareRecord) -> str:
    """What ``Share.record`` stores: the part of a record the share's own columns do not hold.

    Taken only when the record is sent to the PID service (publish, update_share): what was
    published stays what the landing page, OAI-PMH and the PID service show, whatever happens
    to the DID later.  A change of files or metadata reaches all three together, as a new
    version with a new datestamp, with ``update_share``.
    """
    files = [[entry.name, entry.bytes, entry.adler32] for entry in record.files]
    content = {"did_type": record.did_type, "metadata": dict(record.metadata), "files": files}
    return json.dumps(content, separators=(",", ":"), ensure_ascii=False)


def stored_record(share: Any, kinds: Mapping[str, PIDServiceType]) -> ShareRecord:
    """The record of a share row (an ORM object or a row of its columns) from its snapshot.

    ``kinds`` maps PID service names to their types.  A tombstone lists no files.
    """
    content = json.loads(share.record)
    deleted = share.state == ShareState.WITHDRAWN
    return ShareRecord(
        share_id=share.id,
        scope=share.scope,
        name=share.name,
        did_type=content["did_type"],
        pid=share.pid,
        pid_type=PID_TYPES[kinds[share.pid_service]],
        pid_service=share.pid_service,
        landing_url=share.landing_url,
        datestamp=share.datestamp.replace(tzinfo=UTC),
        deleted=deleted,
        metadata=content["metadata"],
        files=() if deleted else [FileEntry(*entry) for entry in content["files"]],
        sets=_sets(share.scope, share.pid_service),
    )


@lru_cache(maxsize=4096)
def _sets(scope: str, service: str) -> tuple[str, str]:
    """A record's setSpecs, cached: validating them is a noticeable part of decoding a page."""
    return scope_set_spec(scope), pid_service_set_spec(service)


def service_kinds(session: Session) -> dict[str, PIDServiceType]:
    """The type of every PID service, by name (what :func:`stored_record` needs)."""
    return {name: kind for name, kind in session.execute(select(PIDService.name, PIDService.service_type))}


def _draft_record(
    session: Session, did: DataIdentifier, service: PIDService, pid: str, url: str
) -> ShareRecord:
    share = Share(
        id=new_id(),
        scope=did.scope,
        name=did.name,
        pid=pid,
        pid_service=service.name,
        landing_url=url,
        state=ShareState.PUBLISHED,
        datestamp=utcnow(),
    )
    return share_records(session, [share])[0]


# --- publishing ------------------------------------------------------------------------------
def share_of(session: Session, scope: str, name: str) -> Share | None:
    """The share of a DID, published or withdrawn, or None."""
    return session.scalars(select(Share).where(Share.scope == scope, Share.name == name)).first()


def share_dict(share: Share) -> dict[str, Any]:
    return {
        "id": share.id,
        "scope": share.scope,
        "name": share.name,
        "pid": share.pid,
        "pid_service": share.pid_service,
        "landing_url": share.landing_url,
        "account": share.account,
        "state": share.state.name,
        "datestamp": share.datestamp,
        "withdrawn_at": share.withdrawn_at,
        "created_at": share.created_at,
    }


def publish(
    session: Session, scope: str, name: str, account: str, base_url: str, pid_service: str | None = None
) -> dict[str, Any]:
    """Publish a dataset or container: mint its PID and create the share.

    A DID already published is a Duplicate.  A withdrawn one is published again under
    its original PID (a PID names one thing for good), so it may not change service.
    """
    did = get_did_row(session, scope, name)
    if did.did_type not in COLLECTIONS:
        raise UnsupportedOperation(
            f"only datasets and containers can be published, not a {did.did_type.name}"
        )
    existing = share_of(session, scope, name)
    if existing is not None:
        return _republish(session, existing, base_url, pid_service)
    service = _service_row(session, pid_service)
    _require_publishable(_draft_record(session, did, service, f"{service.prefix}/draft", ""))
    client = pid_client(service, base_url)
    pid, url, record = _mint(session, client, did, service, base_url)
    share = Share(
        scope=scope,
        name=name,
        pid=pid,
        pid_service=service.name,
        landing_url=url,
        account=account,
        record=snapshot(record),
    )
    session.add(share)
    try:
        session.flush()
    except SQLAlchemyError:
        client.withdraw(pid)
        raise
    return share_dict(share)


def _require_publishable(record: ShareRecord) -> None:
    """Refuse, before any PID is minted or updated, a record DataCite would not take as true."""
    missing = missing_mandatory(record)
    if missing:
        raise InputValidationError(
            f"{validation.shown(did_str(record.scope, record.name), 80)} cannot be published, it needs "
            f"{', '.join(missing)} (set metadata with 'datamgmt meta set')"
        )


def _mint(
    session: Session, client: PIDClient, did: DataIdentifier, service: PIDService, base_url: str
) -> tuple[str, str, ShareRecord]:
    """Mint under a suffix we choose, so the landing URL (which holds the PID) is known up front.

    Returns the PID, its landing URL and the record the service was given.
    """
    for attempt in range(MINT_ATTEMPTS):
        wanted = f"{service.prefix}/{random_suffix()}"
        url = landing_url(base_url, wanted)
        taken = session.scalar(select(func.count()).select_from(Share).where(Share.pid == wanted))
        if taken:
            continue
        record = _draft_record(session, did, service, wanted, url)
        try:
            pid = client.mint(wanted.split("/", 1)[1], url, record)
        except PIDAlreadyExists:
            if attempt == MINT_ATTEMPTS - 1:
                raise
            continue
        return pid, url, record
    raise PIDAlreadyExists(f"no free PID found under {service.prefix} after {MINT_ATTEMPTS} attempts")


def _republish(session: Session, share: Share, base_url: str, pid_service: str | None) -> dict[str, Any]:
    if share.state == ShareState.PUBLISHED:
        raise Duplicate(
            f"{validation.shown(did_str(share.scope, share.name), 80)} is already published as {share.pid}"
        )
    if pid_service is not None and pid_service != share.pid_service:
        raise UnsupportedOperation(
            f"{validation.shown(did_str(share.scope, share.name), 80)} was published through {share.pid_service};"
            " it can only be published again there, under its PID"
        )
    share.state, share.withdrawn_at, share.datestamp = ShareState.PUBLISHED, None, utcnow()
    session.flush()
    _push_update(session, share, base_url)
    return share_dict(share)


def _push_update(session: Session, share: Share, base_url: str) -> None:
    """Send the share's current record to its PID service and keep it as the share's snapshot."""
    record = share_records(session, [share])[0]
    _require_publishable(record)
    share.record = snapshot(record)
    session.flush()
    pid_client(_service_row(session, share.pid_service), base_url).update(
        share.pid, share.landing_url, record
    )


def get_share(session: Session, scope: str, name: str) -> dict[str, Any]:
    """The share of a DID, published or withdrawn."""
    get_did_row(session, scope, name)
    share = share_of(session, scope, name)
    if share is None:
        raise ShareNotFound(f"{validation.shown(did_str(scope, name), 80)} has never been published")
    return share_dict(share)


def _published_share(session: Session, scope: str, name: str) -> Share:
    get_did_row(session, scope, name)
    share = share_of(session, scope, name)
    if share is None or share.state != ShareState.PUBLISHED:
        raise ShareNotFound(f"{validation.shown(did_str(scope, name), 80)} is not published")
    return share


def update_share(session: Session, scope: str, name: str, base_url: str) -> dict[str, Any]:
    """Send the DID's current metadata to the PID service and give the record a new datestamp."""
    share = _published_share(session, scope, name)
    share.datestamp = utcnow()
    session.flush()
    _push_update(session, share, base_url)
    return share_dict(share)


def unpublish(session: Session, scope: str, name: str, base_url: str) -> dict[str, Any]:
    """Withdraw a share, keeping a tombstone.

    The row changes first and the PID service is told last: if the service fails the
    transaction rolls back and nothing changed; if our commit fails afterwards, calling
    unpublish again is safe because withdrawing is idempotent at every service.
    """
    share = _published_share(session, scope, name)
    now = utcnow()
    share.state, share.withdrawn_at, share.datestamp = ShareState.WITHDRAWN, now, now
    session.flush()
    pid_client(_service_row(session, share.pid_service), base_url).withdraw(share.pid)
    return share_dict(share)


def withdraw_orphan(session: Session, pid_service: str, pid: str, base_url: str) -> None:
    """Withdraw a PID minted for a share whose transaction then failed to commit."""
    pid_client(_service_row(session, pid_service), base_url).withdraw(pid)


def _replica_locations(
    session: Session, keys: Sequence[tuple[str, ...]]
) -> dict[tuple[str, str], list[dict[str, str]]]:
    """RSE and state of every replica of the given files, in chunked queries (a file may be gone)."""
    found: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for part in chunks(list(dict.fromkeys(keys)), 500):
        rows = session.execute(
            select(Replica.scope, Replica.name, RSE.rse, Replica.state)
            .join(RSE, RSE.id == Replica.rse_id)
            .where(keys_in((Replica.scope, Replica.name), part))
            .order_by(Replica.scope, Replica.name, RSE.rse)
        )
        for scope, name, rse, state in rows:
            found[(scope, name)].append({"rse": rse, "state": state.name})
    return found


# --- resolution ------------------------------------------------------------------------------
def _share_by_pid(session: Session, pid: str) -> Share:
    """Handles and DOIs are case-insensitive: an exact match first, then one ignoring case."""
    share = session.scalars(select(Share).where(Share.pid == pid)).first()
    if share is None:
        share = session.scalars(select(Share).where(func.lower(Share.pid) == pid.lower())).first()
    if share is None:
        raise ShareNotFound(f"no share has the PID {validation.shown(pid, 80)}")
    return share


def resolve(session: Session, pid: str, file_limit: int = LANDING_FILE_LIMIT) -> dict[str, Any]:
    """What the landing page shows: the published record (its snapshot) and where its files are now.

    The citation and the file list are those that were published, as OAI-PMH and the PID
    service have them; only the replicas are looked up live. A tombstone keeps its title
    and creators (so the citation still says what it was) but shows no files.
    """
    share = _share_by_pid(session, pid)
    record = stored_record(share, service_kinds(session))
    withdrawn = share.state == ShareState.WITHDRAWN
    shown = [] if withdrawn else list(record.files[:file_limit])
    where = _replica_locations(session, [tuple(entry.name.split(":", 1)) for entry in shown])
    files = [
        {
            "scope": scope,
            "name": name,
            "bytes": entry.bytes,
            "adler32": entry.adler32,
            "replicas": where.get((scope, name), []),
        }
        for entry in shown
        for scope, name in [entry.name.split(":", 1)]
    ]
    return {
        **share_dict(share),
        "pid_type": record.pid_type,
        "did_type": record.did_type,
        "withdrawn": withdrawn,
        "title": record.first("title") or share.name,
        "creators": record.values("creator"),
        "subjects": record.values("subject"),
        "description": record.first("description"),
        "publisher": record.first("publisher"),
        "rights": record.first("rights"),
        "date": record.first("date"),
        "publication_year": record.first("publication_year") or str(share.datestamp.year),
        "files": files,
        "files_total": len(record.files),
        "bytes_total": record.total_bytes,
    }

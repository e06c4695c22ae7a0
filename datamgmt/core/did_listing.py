"""DID look-ups over many DIDs at once: by GUID, files and metadata in bulk, new DIDs, a
scope's tree, samples, and bringing back DIDs whose lifetime ran out.

Each is one query (or one per chunk of keys, or one recursive CTE), whatever the number of
DIDs asked for: Rucio's versions loop per DID, ours never do.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, exists, func, literal, select, update
from sqlalchemy.orm import Session

from datamgmt.core import deleted_did, validation
from datamgmt.core.db import listing
from datamgmt.core.db.constants import DIDType, RuleState
from datamgmt.core.db.models import Content, ContentHistory, DataIdentifier, Rule
from datamgmt.core.db.types import utcnow
from datamgmt.core.did import COLLECTIONS, add_collections, get_did_row
from datamgmt.core.did_content import attach, file_keys_query
from datamgmt.core.keys import DIDKey, chunks, keys_in
from datamgmt.core.metadata import column_metadata, key_values
from datamgmt.exceptions import DataIdentifierNotFound, InputValidationError, InvalidMetadata

#: Most DIDs one bulk request may name, and most new DIDs one listing returns (Rucio's chunk).
MAX_KEYS = 10_000
NEW_DIDS_LIMIT = 1000


def did_keys(dids: object, what: str = "dids") -> list[DIDKey]:
    """``[{scope, name}, ...]`` from a request, checked, duplicates dropped, order kept."""
    if not isinstance(dids, list) or not all(isinstance(did, Mapping) for did in dids):
        raise InputValidationError(f"{what} must be a list of {{scope, name}} objects")
    if len(dids) > MAX_KEYS:
        raise InputValidationError(f"a request may name at most {MAX_KEYS} DIDs")
    return list(
        dict.fromkeys(
            (validation.scope_name(d.get("scope")), validation.did_name(d.get("name"))) for d in dids
        )
    )


def datasets_by_guid(session: Session, guid: str) -> list[dict[str, str]]:
    """The collections that hold the file with this GUID (Rucio's ``get_dataset_by_guid``)."""
    normalised = guid.replace("-", "").lower()
    file_key = session.execute(
        select(DataIdentifier.scope, DataIdentifier.name)
        .where(DataIdentifier.guid == normalised, DataIdentifier.did_type == DIDType.FILE)
        .limit(1)
    ).first()
    if file_key is None:
        raise DataIdentifierNotFound(f"No file associated to GUID : {validation.shown(guid)}")
    rows = session.execute(
        select(Content.scope, Content.name)
        .where(Content.child_scope == file_key.scope, Content.child_name == file_key.name)
        .order_by(Content.scope, Content.name)
    )
    return [{"scope": row.scope, "name": row.name} for row in rows]


def bulk_list_files(session: Session, keys: Sequence[DIDKey]) -> Iterator[dict[str, Any]]:
    """Every file below each DID (a file: itself) with ``parent_scope``/``parent_name``; unknown DIDs are skipped."""
    for part in chunks(list(keys), 500):
        base = select(
            Content.scope.label("root_scope"),
            Content.name.label("root_name"),
            Content.child_scope.label("scope"),
            Content.child_name.label("name"),
            Content.child_type.label("type"),
        ).where(keys_in((Content.scope, Content.name), part))
        tree = base.cte("bulk_descendants", recursive=True)
        step = select(
            tree.c.root_scope, tree.c.root_name, Content.child_scope, Content.child_name, Content.child_type
        ).join(tree, and_(Content.scope == tree.c.scope, Content.name == tree.c.name))
        tree = tree.union(step)
        below = select(tree.c.root_scope, tree.c.root_name, tree.c.scope, tree.c.name).where(
            tree.c.type == DIDType.FILE
        )
        themselves = select(
            DataIdentifier.scope, DataIdentifier.name, DataIdentifier.scope, DataIdentifier.name
        ).where(
            keys_in((DataIdentifier.scope, DataIdentifier.name), part),
            DataIdentifier.did_type == DIDType.FILE,
        )
        pairs = below.union(themselves).subquery()
        query = (
            select(pairs.c[0].label("parent_scope"), pairs.c[1].label("parent_name"), DataIdentifier)
            .join(DataIdentifier, and_(DataIdentifier.scope == pairs.c[2], DataIdentifier.name == pairs.c[3]))
            .order_by(pairs.c[0], pairs.c[1], DataIdentifier.scope, DataIdentifier.name)
        )
        for parent_scope, parent_name, did in listing.rows(session, query):
            yield {
                "scope": did.scope,
                "name": did.name,
                "bytes": did.bytes,
                "adler32": did.adler32,
                "md5": did.md5,
                "guid": did.guid.upper() if did.guid else None,
                "events": did.events,
                "parent_scope": parent_scope,
                "parent_name": parent_name,
            }


def _ancestors(session: Session, keys: Sequence[DIDKey]) -> dict[DIDKey, list[DIDKey]]:
    """For each DID, its ancestors nearest first (one recursive query per chunk, depth capped at 20 like Rucio)."""
    found: dict[DIDKey, list[tuple[int, DIDKey]]] = {key: [] for key in keys}
    for part in chunks(list(keys), 500):
        base = select(
            Content.child_scope.label("root_scope"),
            Content.child_name.label("root_name"),
            Content.scope,
            Content.name,
            literal(1).label("depth"),
        ).where(keys_in((Content.child_scope, Content.child_name), part))
        tree = base.cte("bulk_ancestors", recursive=True)
        step = (
            select(tree.c.root_scope, tree.c.root_name, Content.scope, Content.name, tree.c.depth + 1)
            .join(tree, and_(Content.child_scope == tree.c.scope, Content.child_name == tree.c.name))
            .where(tree.c.depth < 20)
        )
        tree = tree.union(step)
        for row in session.execute(select(tree)):
            found[(row.root_scope, row.root_name)].append((row.depth, (row.scope, row.name)))
    return {key: [ancestor for _, ancestor in sorted(set(items))] for key, items in found.items()}


def metadata_bulk(
    session: Session, keys: Sequence[DIDKey], inherit: bool = False, plugin: str = "DID_COLUMN"
) -> Iterator[dict[str, Any]]:
    """Metadata of many DIDs (Rucio's ``get_metadata_bulk``); with ``inherit`` an ancestor fills the keys a DID lacks."""
    wanted = plugin.upper()
    if wanted not in ("ALL", "DID_COLUMN", "JSON"):
        raise InvalidMetadata(f"unknown metadata plugin {validation.shown(plugin)}: ALL, DID_COLUMN or JSON")
    ancestors = _ancestors(session, keys) if inherit else {key: [] for key in keys}
    everyone = list(dict.fromkeys([*keys, *(a for found in ancestors.values() for a in found)]))
    rows: dict[DIDKey, DataIdentifier] = {}
    for part in chunks(everyone, 1000):
        rows.update(
            {
                (r.scope, r.name): r
                for r in session.scalars(
                    select(DataIdentifier).where(keys_in((DataIdentifier.scope, DataIdentifier.name), part))
                )
            }
        )
    # Rucio keeps project, datatype... as DID columns; we keep them as key-values, so every
    # plugin shows them (as GET /dids/<did>/meta does) and JSON shows nothing else.
    values = key_values(session, [key for key in everyone if key in rows])

    def meta(key: DIDKey) -> dict[str, Any]:
        result = dict(values[key])
        if wanted != "JSON":
            result.update(column_metadata(rows[key]))
        return result

    for key in keys:
        if key not in rows:
            continue
        result = meta(key)
        for ancestor in ancestors[key]:
            if ancestor in rows:
                result.update({k: v for k, v in meta(ancestor).items() if k not in result})
        yield result


def list_new_dids(session: Session, did_type: str | None = None) -> Iterator[dict[str, Any]]:
    """DIDs the transmogrifier has not seen yet, without a rule being injected (Rucio's ``list_new_dids``)."""
    injecting = exists().where(
        Rule.scope == DataIdentifier.scope, Rule.name == DataIdentifier.name, Rule.state == RuleState.INJECT
    )
    query = select(DataIdentifier.scope, DataIdentifier.name, DataIdentifier.did_type).where(
        DataIdentifier.is_new.is_(True), ~injecting
    )
    if did_type:
        query = query.where(DataIdentifier.did_type == DIDType.parse(did_type))
    for row in session.execute(
        query.order_by(DataIdentifier.created_at, DataIdentifier.scope, DataIdentifier.name).limit(
            NEW_DIDS_LIMIT
        )
    ):
        yield {"scope": row.scope, "name": row.name, "did_type": row.did_type}


def scope_list(
    session: Session, scope: str, name: str | None = None, recursive: bool = False
) -> Iterator[dict[str, Any]]:
    """A scope's tree (Rucio's ``scope_list``): its top-level DIDs, or one DID, then (``recursive``) what lies below.

    Top-level means attached to no collection of the same scope; each line has ``parent`` and ``level``."""
    if name is None:
        attached = exists().where(
            Content.child_scope == DataIdentifier.scope,
            Content.child_name == DataIdentifier.name,
            Content.scope == scope,
        )
        tops = (
            session.execute(
                select(DataIdentifier.name, DataIdentifier.did_type, DataIdentifier.bytes)
                .where(DataIdentifier.scope == scope, ~attached)
                .order_by(DataIdentifier.name)
            )
            .tuples()
            .all()
        )
    else:
        row = get_did_row(session, scope, name)
        tops = [(row.name, row.did_type, row.bytes)]
    for top_name, did_type, size in tops:
        yield {
            "scope": scope,
            "name": top_name,
            "type": did_type,
            "parent": None,
            "level": 0,
            "bytes": size if did_type == DIDType.FILE else None,
        }
        if did_type in COLLECTIONS and (recursive or name is not None):
            yield from _below(session, scope, top_name, recursive)


def _below(session: Session, scope: str, name: str, recursive: bool) -> Iterator[dict[str, Any]]:
    """Children of a collection in depth-first order, from one recursive query (one level unless ``recursive``)."""
    base = select(
        Content.scope.label("parent_scope"),
        Content.name.label("parent_name"),
        Content.child_scope,
        Content.child_name,
        Content.child_type,
        literal(1).label("level"),
    ).where(Content.scope == scope, Content.name == name)
    tree = base.cte("scope_tree", recursive=True)
    if recursive:
        step = select(
            Content.scope,
            Content.name,
            Content.child_scope,
            Content.child_name,
            Content.child_type,
            tree.c.level + 1,
        ).join(tree, and_(Content.scope == tree.c.child_scope, Content.name == tree.c.child_name))
        tree = tree.union(step)
    children: dict[DIDKey, list[Any]] = {}
    for row in session.execute(select(tree).order_by(tree.c.child_name)):
        children.setdefault((row.parent_scope, row.parent_name), []).append(row)

    def walk(key: DIDKey) -> Iterator[dict[str, Any]]:
        for row in children.pop(key, []):
            yield {
                "scope": row.child_scope,
                "name": row.child_name,
                "type": row.child_type,
                "parent": {"scope": row.parent_scope, "name": row.parent_name},
                "level": row.level,
            }
            yield from walk((row.child_scope, row.child_name))

    yield from walk((scope, name))


def create_sample(
    session: Session,
    input_scope: str,
    input_name: str,
    output_scope: str,
    output_name: str,
    nbfiles: object,
    account: str,
) -> None:
    """A new dataset holding ``nbfiles`` files picked at random from below a DID (Rucio's ``create_did_sample``)."""
    try:
        count = int(nbfiles)  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise InputValidationError(
            f"nbfiles must be a whole number, not {validation.shown(nbfiles)}"
        ) from exc
    if count < 0 or count > MAX_KEYS:
        raise InputValidationError(f"nbfiles must be between 0 and {MAX_KEYS}")
    source = get_did_row(session, input_scope, input_name)
    keys = file_keys_query(input_scope, input_name, source.did_type).subquery()
    picked = session.execute(select(keys.c.scope, keys.c.name).order_by(func.random()).limit(count)).all()
    add_collections(session, [{"scope": output_scope, "name": output_name, "type": "DATASET"}], account)
    if picked:
        attach(session, output_scope, output_name, [{"scope": s, "name": n} for s, n in picked])


def resurrect(session: Session, keys: Sequence[DIDKey]) -> None:
    """Bring DIDs back (Rucio's ``resurrect``): a removed one from ``deleted_dids``
    (:mod:`datamgmt.core.deleted_did`), one whose lifetime has passed but which the undertaker has
    not removed yet by taking its lifetime back.  Any other name is DataIdentifierNotFound."""
    now = utcnow()
    done: set[DIDKey] = set()
    for part in chunks(list(keys), 1000):
        condition = and_(
            keys_in((DataIdentifier.scope, DataIdentifier.name), part), DataIdentifier.expired_at < now
        )
        done.update(
            session.execute(select(DataIdentifier.scope, DataIdentifier.name).where(condition)).tuples()
        )
        session.execute(
            update(DataIdentifier)
            .where(condition)
            .values(expired_at=None)
            .execution_options(synchronize_session=False)
        )
    done |= deleted_did.restore(session, [key for key in keys if key not in done])
    missing = [key for key in keys if key not in done]
    if missing:
        raise DataIdentifierNotFound(
            f"Deleted Data identifier {validation.shown(':'.join(missing[0]), 80)} not found"
        )


def list_content_history(session: Session, scope: str, name: str) -> Iterator[dict[str, Any]]:
    """What a collection held once and holds no more (:mod:`datamgmt.core.content_history`)."""
    get_did_row(session, scope, name)
    query = (
        select(ContentHistory)
        .where(ContentHistory.scope == scope, ContentHistory.name == name)
        .order_by(ContentHistory.deleted_at, ContentHistory.id)
    )
    for row in listing.scalars(session, query):
        yield {
            "scope": row.child_scope,
            "name": row.child_name,
            "type": row.child_type,
            "bytes": row.bytes,
            "adler32": row.adler32,
            "md5": row.md5,
            "deleted_at": row.deleted_at,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }

"""Where a rule's locks go: the files under its DID, the solver's plan, and applying the plan.

*Planning* reads only: the files under the DID (one query), their replicas (one query), the
candidate RSEs with space, weights and quota (``placement.adapter``), and asks the solver for
RSEs per group (ALL: the whole DID, DATASET: each dataset, NONE: each file), preferring RSEs
that already hold the data.  *Writing* then creates the locks, replicas, requests and quota
charges in bulk (``lock.create_locks``), and the dataset locks here.  Every error of planning
(InsufficientTargetRSEs, RSEOverQuota, InsufficientAccountLimit) is raised before anything is
written, which is also what makes :func:`datamgmt.core.rule.explain_rule` a faithful dry run.
Rule creation, the judge's evaluation and its repair of STUCK rules all apply rules here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import and_, exists, insert, select
from sqlalchemy.orm import Session

from datamgmt.core.db.constants import DIDType, LockState, RuleGrouping
from datamgmt.core.db.models import Content, DataIdentifier, DatasetLock, Lock, Rule
from datamgmt.core.did_content import descendants_cte, file_keys_query
from datamgmt.core.expression import parse_expression, rse_ids_for
from datamgmt.core.gc_pause import gc_paused
from datamgmt.core.keys import DIDKey, chunks, keys_in
from datamgmt.core.lock import PRESENT, ReplicaMap, WantedLock, create_locks, load_replicas
from datamgmt.core.lock_state import settle_rules
from datamgmt.core.placement import place, present_from_triples
from datamgmt.core.placement.adapter import Targets, load_targets
from datamgmt.exceptions import InvalidRSEExpression, InvalidSourceReplicaExpression


# --- the files of a rule ---------------------------------------------------------------------
@dataclass
class FileSet:
    """Files under a rule's DID, each with the index of its dataset in ``groups``."""

    keys: list[DIDKey] = field(default_factory=list)
    bytes: list[int] = field(default_factory=list)
    adler32: list[str | None] = field(default_factory=list)
    md5: list[str | None] = field(default_factory=list)
    group: list[int] = field(default_factory=list)
    groups: list[DIDKey] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.keys)


def _files_query(rule: Rule, only_unlocked: bool):  # type: ignore[no-untyped-def]
    """SELECT (dataset scope, dataset name, scope, name, bytes, adler32, md5) of the files
    under the rule's DID; ``only_unlocked`` keeps files the rule does not lock yet."""
    if rule.did_type == DIDType.FILE:
        query = select(
            DataIdentifier.scope,
            DataIdentifier.name,
            DataIdentifier.scope,
            DataIdentifier.name,
            DataIdentifier.bytes,
            DataIdentifier.adler32,
            DataIdentifier.md5,
        ).where(DataIdentifier.scope == rule.scope, DataIdentifier.name == rule.name)
        child_scope, child_name = DataIdentifier.scope, DataIdentifier.name
    else:
        query = select(
            Content.scope,
            Content.name,
            Content.child_scope,
            Content.child_name,
            Content.bytes,
            Content.adler32,
            Content.md5,
        ).where(Content.child_type == DIDType.FILE)
        if rule.did_type == DIDType.DATASET:
            query = query.where(Content.scope == rule.scope, Content.name == rule.name)
        else:
            tree = descendants_cte(rule.scope, rule.name)
            query = query.join(
                tree,
                and_(
                    Content.scope == tree.c.scope, Content.name == tree.c.name, tree.c.type == DIDType.DATASET
                ),
            )
        child_scope, child_name = Content.child_scope, Content.child_name
    if only_unlocked:
        query = query.where(
            ~exists().where(Lock.rule_id == rule.id, Lock.scope == child_scope, Lock.name == child_name)
        )
    return query.order_by(query.selected_columns[0], query.selected_columns[1], child_scope, child_name)


def load_files(session: Session, rule: Rule, only_unlocked: bool = False) -> FileSet:
    """The files of the rule (a file in two datasets counts once, in the first)."""
    files = FileSet()
    group_index: dict[DIDKey, int] = {}
    seen: set[DIDKey] = set()
    for ds_scope, ds_name, scope, name, size, adler, md5 in session.connection().execute(
        _files_query(rule, only_unlocked)
    ):
        if (scope, name) in seen:
            continue
        seen.add((scope, name))
        group = group_index.setdefault((ds_scope, ds_name), len(group_index))
        if group == len(files.groups):
            files.groups.append((ds_scope, ds_name))
        files.keys.append((scope, name))
        files.bytes.append(size or 0)
        files.adler32.append(adler)
        files.md5.append(md5)
        files.group.append(group)
    return files


# --- planning --------------------------------------------------------------------------------
@dataclass
class Plan:
    """Where each file of a FileSet gets its locks: ``rse_of[f]`` is a list of RSE ids."""

    files: FileSet
    rse_of: list[list[str]]
    #: item (group of the grouping) -> RSE ids, for dataset locks and explanations
    item_rses: dict[DIDKey, list[str]]


def _items(rule: Rule, files: FileSet) -> tuple[np.ndarray, list[DIDKey]]:
    """Item index of each file, and each item's DID, for the rule's grouping."""
    if rule.grouping == RuleGrouping.ALL:
        return np.zeros(len(files), np.int64), [(rule.scope, rule.name)]
    if rule.grouping == RuleGrouping.DATASET and rule.did_type != DIDType.FILE:
        return np.asarray(files.group, np.int64), list(files.groups)
    return np.arange(len(files), dtype=np.int64), list(files.keys)


def _kept_rses(
    session: Session, rule: Rule, items: list[DIDKey], targets: Targets
) -> dict[DIDKey, list[str]]:
    """RSEs where the rule already locks files of each item (still usable targets): new files
    of a dataset (ALL: of the DID) join their siblings, as Rucio's evaluator does."""
    usable = {r for r, w in zip(targets.rse_ids, targets.write_available, strict=True) if w}
    kept: dict[DIDKey, set[str]] = defaultdict(set)
    if rule.grouping == RuleGrouping.ALL:
        rses = session.scalars(select(Lock.rse_id).distinct().where(Lock.rule_id == rule.id))
        kept[items[0]].update(rses)
    elif rule.grouping == RuleGrouping.DATASET and rule.did_type != DIDType.FILE:
        for part in chunks(items):
            rows = session.execute(
                select(Content.scope, Content.name, Lock.rse_id)
                .distinct()
                .join(Lock, and_(Lock.scope == Content.child_scope, Lock.name == Content.child_name))
                .where(Lock.rule_id == rule.id, keys_in((Content.scope, Content.name), part))
            )
            for scope, name, rse_id in rows:
                kept[(scope, name)].add(rse_id)
    return {item: sorted(rses & usable) for item, rses in kept.items() if len(rses & usable) >= rule.copies}


def plan_rule(session: Session, rule: Rule, files: FileSet, replicas: ReplicaMap, targets: Targets) -> Plan:
    """Choose RSEs for every file of ``files``; raises the solver's errors, writes nothing."""
    item_of, items = _items(rule, files)
    kept = _kept_rses(session, rule, items, targets) if len(files) else {}
    free = [i for i, item in enumerate(items) if item not in kept]
    position = np.full(len(items), -1, np.int64)
    position[free] = np.arange(len(free))
    nbytes = np.asarray(files.bytes, np.int64)
    item_bytes = np.bincount(item_of, weights=nbytes, minlength=len(items)).astype(np.int64)[free]
    index = targets.index
    triples: tuple[list[int], list[int], list[int]] = ([], [], [])
    for f, key in enumerate(files.keys):
        slot = position[item_of[f]]
        if slot < 0:
            continue
        for rse_id, state in replicas.get(key, {}).items():
            if state in PRESENT and rse_id in index:
                triples[0].append(int(slot))
                triples[1].append(index[rse_id])
                triples[2].append(files.bytes[f])
    present = present_from_triples(len(free), *triples)
    seed = int(rule.id[:8], 16)
    result = place(targets.problem(item_bytes, rule.copies, present=present, seed=seed))
    for slot in np.flatnonzero(result.status != 0):
        result.raise_for_item(int(slot))
    targets.check_global_limits(result, item_bytes)
    item_rses = dict(kept)
    for slot, i in enumerate(free):
        item_rses[items[i]] = [targets.rse_ids[r] for r in result.rses(slot)]
    rse_of = [item_rses[items[i]] for i in item_of.tolist()]
    return Plan(files=files, rse_of=rse_of, item_rses=item_rses)


def placement_targets(session: Session, rule: Rule) -> Targets:
    rses = parse_expression(
        session, rule.rse_expression, for_write=True, ignore_availability=rule.ignore_availability
    )
    return load_targets(
        session,
        rses,
        rule.account,
        weight=rule.weight,
        ignore_availability=rule.ignore_availability,
        ignore_account_limit=rule.ignore_account_limit,
    )


def allowed_sources(session: Session, rule: Rule) -> set[str] | None:
    if not rule.source_replica_expression:
        return None
    try:
        return rse_ids_for(session, rule.source_replica_expression)
    except InvalidRSEExpression as exc:
        raise InvalidSourceReplicaExpression(str(exc)) from exc


def _wanted(plan: Plan) -> list[WantedLock]:
    files = plan.files
    return [
        WantedLock(scope, name, rse_id, files.bytes[f], files.adler32[f], files.md5[f])
        for f, (scope, name) in enumerate(files.keys)
        for rse_id in plan.rse_of[f]
    ]


def apply_rule(session: Session, rule: Rule, only_unlocked: bool = False) -> None:
    """Plan and write the rule's locks (``only_unlocked``: for files it does not lock yet),
    with the garbage collector paused (see core/gc_pause.py)."""
    with gc_paused():
        files = load_files(session, rule, only_unlocked=only_unlocked)
        plan = None
        if len(files):
            targets = placement_targets(session, rule)
            allowed = allowed_sources(session, rule)
            replicas = load_replicas(session, file_keys_query(rule.scope, rule.name, rule.did_type))
            plan = plan_rule(session, rule, files, replicas, targets)
            create_locks(session, rule, _wanted(plan), replicas, allowed)
        settle_rules(session, [rule.id])
        if plan is not None:
            _add_dataset_locks(session, rule, plan)


def _add_dataset_locks(session: Session, rule: Rule, plan: Plan) -> None:
    if rule.grouping != RuleGrouping.DATASET or rule.did_type == DIDType.FILE:
        return
    existing = set(
        session.execute(
            select(DatasetLock.scope, DatasetLock.name, DatasetLock.rse_id).where(
                DatasetLock.rule_id == rule.id
            )
        ).tuples()
    )
    # apply_rule has settled the rule: a rule whose data was in place is OK by now.
    state = LockState[rule.state.name] if rule.state.name in LockState.__members__ else LockState.REPLICATING
    sizes = _collection_sizes(session, list(plan.item_rses))
    rows = [
        {
            "scope": s,
            "name": n,
            "rule_id": rule.id,
            "rse_id": r,
            "account": rule.account,
            "state": state,
            "length": sizes[(s, n)][0],
            "bytes": sizes[(s, n)][1],
        }
        for (s, n), rses in plan.item_rses.items()
        for r in rses
        if (s, n, r) not in existing
    ]
    if rows:
        session.execute(insert(DatasetLock), rows)


def _collection_sizes(session: Session, keys: list[DIDKey]) -> dict[DIDKey, tuple[int | None, int | None]]:
    """(length, bytes) of datasets, which their dataset locks carry, as Rucio's do."""
    sizes: dict[DIDKey, tuple[int | None, int | None]] = {}
    for part in chunks(keys):
        rows = session.execute(
            select(
                DataIdentifier.scope, DataIdentifier.name, DataIdentifier.length, DataIdentifier.bytes
            ).where(keys_in((DataIdentifier.scope, DataIdentifier.name), part))
        )
        sizes.update({(row.scope, row.name): (row.length, row.bytes) for row in rows})
    return sizes

"""The catalogue's invariants, checked at a quiet moment (`datamgmt-admin check`).

One checker serves operators (``datamgmt-admin check``), the test suite (which runs it after
every test that used the catalogue) and the fault campaign.  Each invariant is ONE set-based
query that selects the rows violating it, with ``count(*) OVER ()`` giving the total and a
``LIMIT`` keeping a few example rows, so a catalogue of 10^6 replicas costs a handful of
scans, never a query per row.

"At a quiet moment" matters: while daemons work, a request may be between two states and a
usage delta may wait for abacus.  Deltas are taken into account (usage + queued deltas must
equal the recount), but an operator should run the check with the daemons idle.

:func:`check_storage` adds what only the storage can tell: the files under each RSE's prefix
agree with the AVAILABLE replicas, both ways.  It lists each RSE through its protocol
(:meth:`datamgmt.rse.protocols.base.Protocol.list_files`) and compares PFNs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, literal, or_, select, text, union_all
from sqlalchemy.orm import Session

from datamgmt.config import get_config
from datamgmt.core.accounting import CATALOGUE_SOURCE
from datamgmt.core.db.constants import (
    TERMINAL_REQUESTS,
    CodedEnum,
    LockState,
    ReplicaState,
    RequestState,
    RuleState,
)
from datamgmt.core.db.models import (
    RSE,
    AccountUsage,
    Lock,
    Replica,
    Request,
    RSEAttribute,
    RSEUsage,
    Rule,
    UpdatedAccountCounter,
    UpdatedRSECounter,
)
from datamgmt.core.db.types import utcnow
from datamgmt.core.lock import IN_PLACE
from datamgmt.core.lock_state import FROZEN
from datamgmt.core.rse import protocols_by_rse_id
from datamgmt.exceptions import DatamgmtError, RSEProtocolNotSupported
from datamgmt.rse.lfn2pfn import DEFAULT_ALGORITHM, lfn2path
from datamgmt.rse.protocols import Protocol, create_protocol, select_protocol

#: Example rows kept per violated invariant.
EXAMPLES = 5
#: Default seconds a request may stay SUBMITTING/SUBMITTED (``[conveyor] submitted_timeout``).
SUBMITTED_TIMEOUT = 6 * 3600
#: Default seconds a request may stay QUEUED (``[conveyor] queued_timeout``).
QUEUED_TIMEOUT = 24 * 3600


@dataclass(frozen=True)
class Violation:
    """One invariant that does not hold: how often, and a few rows that show it."""

    invariant: str
    description: str
    count: int
    examples: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "invariant": self.invariant,
            "description": self.description,
            "count": self.count,
            "examples": self.examples,
        }


@dataclass
class Report:
    """What one check found: the invariants checked, those violated, and what it could not check."""

    checked: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    #: Invariants or RSEs left out, with the reason (e.g. a protocol that cannot list).
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def extend(self, other: Report) -> None:
        self.checked += other.checked
        self.violations += other.violations
        self.skipped += other.skipped

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "skipped": self.skipped,
            "violations": [v.to_dict() for v in self.violations],
        }

    def render(self) -> str:
        """A readable report: one paragraph per violated invariant with its examples."""
        lines = []
        for violation in self.violations:
            lines.append(f"VIOLATED {violation.invariant} ({violation.count}): {violation.description}")
            lines += ["    " + ", ".join(f"{k}={v}" for k, v in row.items()) for row in violation.examples]
        lines += [f"skipped  {reason}" for reason in self.skipped]
        held = len(self.checked) - len({v.invariant for v in self.violations})
        lines.append(f"{held} of {len(self.checked)} invariants hold; {len(self.violations)} violated")
        return "\n".join(lines)


@dataclass(frozen=True)
class Invariant:
    """An invariant as the query that selects the rows violating it."""

    name: str
    description: str
    violations: Callable[[datetime], Select[Any]]


# --- helpers -------------------------------------------------------------------------------
def _same_replica(model: Any, rse_column: Any) -> ColumnElement[bool]:
    """``model`` names the replica (scope, name, ``rse_column``)."""
    return and_(Replica.scope == model.scope, Replica.name == model.name, Replica.rse_id == rse_column)


def _rse_name(rse_id: Any) -> Any:
    return select(RSE.rse).where(RSE.id == rse_id).scalar_subquery().label("rse")


def _shown(value: Any) -> Any:
    if isinstance(value, CodedEnum):
        return value.name
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return value


def _timeout(option: str, default: int) -> timedelta:
    return timedelta(seconds=get_config().get_int("conveyor", option, fallback=default))


# --- the invariants ------------------------------------------------------------------------
def _replica_lock_count(_now: datetime) -> Select[Any]:
    locks = (
        select(Lock.scope, Lock.name, Lock.rse_id, func.count().label("n"))
        .group_by(Lock.scope, Lock.name, Lock.rse_id)
        .subquery()
    )
    counted = func.coalesce(locks.c.n, 0)
    return (
        select(
            Replica.scope, Replica.name, _rse_name(Replica.rse_id), Replica.lock_cnt, counted.label("locks")
        )
        .outerjoin(
            locks,
            and_(
                locks.c.scope == Replica.scope, locks.c.name == Replica.name, locks.c.rse_id == Replica.rse_id
            ),
        )
        .where(Replica.lock_cnt != counted)
    )


def _locked_replica_tombstone(_now: datetime) -> Select[Any]:
    return select(
        Replica.scope, Replica.name, _rse_name(Replica.rse_id), Replica.lock_cnt, Replica.tombstone
    ).where(Replica.lock_cnt > 0, Replica.tombstone.is_not(None))


def _lock_without_replica(_now: datetime) -> Select[Any]:
    return select(Lock.scope, Lock.name, _rse_name(Lock.rse_id), Lock.rule_id, Lock.state).where(
        ~exists().where(_same_replica(Lock, Lock.rse_id))
    )


def _lock_without_rule(_now: datetime) -> Select[Any]:
    return select(Lock.scope, Lock.name, _rse_name(Lock.rse_id), Lock.rule_id, Lock.state).where(
        ~exists().where(Rule.id == Lock.rule_id)
    )


def _rule_counters(_now: datetime) -> Select[Any]:
    def by_state(state: LockState) -> Any:
        return func.sum(case((Lock.state == state, 1), else_=0)).label(state.name.lower())

    locks = select(Lock.rule_id, *(by_state(s) for s in LockState)).group_by(Lock.rule_id).subquery()
    ok, replicating, stuck = (
        func.coalesce(locks.c[s.name.lower()], 0)
        for s in (LockState.OK, LockState.REPLICATING, LockState.STUCK)
    )
    return (
        select(
            Rule.id.label("rule_id"),
            Rule.locks_ok_cnt,
            ok.label("ok_locks"),
            Rule.locks_replicating_cnt,
            replicating.label("replicating_locks"),
            Rule.locks_stuck_cnt,
            stuck.label("stuck_locks"),
        )
        .outerjoin(locks, locks.c.rule_id == Rule.id)
        .where(
            or_(
                Rule.locks_ok_cnt != ok,
                Rule.locks_replicating_cnt != replicating,
                Rule.locks_stuck_cnt != stuck,
            )
        )
    )


def _rule_state(_now: datetime) -> Select[Any]:
    stuck, replicating = Rule.locks_stuck_cnt > 0, Rule.locks_replicating_cnt > 0
    wrong = or_(
        and_(stuck, Rule.state != RuleState.STUCK),
        and_(~stuck, ~replicating, Rule.state != RuleState.OK),
        and_(~stuck, replicating, Rule.state != RuleState.REPLICATING),
    )
    return select(
        Rule.id.label("rule_id"),
        Rule.state,
        Rule.locks_ok_cnt,
        Rule.locks_replicating_cnt,
        Rule.locks_stuck_cnt,
    ).where(Rule.state.notin_(FROZEN), wrong)


def _ok_lock_replica_available(_now: datetime) -> Select[Any]:
    return (
        select(
            Lock.scope, Lock.name, _rse_name(Lock.rse_id), Lock.rule_id, Replica.state.label("replica_state")
        )
        .join(Replica, _same_replica(Lock, Lock.rse_id))
        .where(Lock.state == LockState.OK, Replica.state.notin_(IN_PLACE))
    )


def _live_request_for(model: Any, rse_column: Any) -> ColumnElement[bool]:
    return exists().where(
        Request.scope == model.scope,
        Request.name == model.name,
        Request.dest_rse_id == rse_column,
        Request.state.notin_(TERMINAL_REQUESTS),
    )


def _replicating_lock_without_request(_now: datetime) -> Select[Any]:
    return (
        select(Lock.scope, Lock.name, _rse_name(Lock.rse_id), Lock.rule_id, Rule.state.label("rule_state"))
        .join(Rule, Rule.id == Lock.rule_id)
        .where(
            Lock.state == LockState.REPLICATING,
            Rule.state != RuleState.STUCK,
            ~_live_request_for(Lock, Lock.rse_id),
        )
    )


def _request_rule_gone(_now: datetime) -> Select[Any]:
    locked = exists().where(
        Lock.scope == Request.scope, Lock.name == Request.name, Lock.rse_id == Request.dest_rse_id
    )
    return select(
        Request.id.label("request_id"),
        Request.scope,
        Request.name,
        _rse_name(Request.dest_rse_id),
        Request.state,
        Request.rule_id,
    ).where(
        Request.rule_id.is_not(None),
        Request.state.notin_(TERMINAL_REQUESTS),
        Request.external_id.is_(None),
        ~exists().where(Rule.id == Request.rule_id),
        ~locked,
    )


def _usage_against_recount(
    key: Sequence[str], kept: Select[Any], queued: Select[Any], recount: Select[Any]
) -> Select[Any]:
    """Rows of (``key``, files, bytes, counted_files, counted_bytes) where counters plus queued
    deltas differ from a recount.  ``kept`` and ``queued`` select (key, files, bytes), ``recount``
    (key, files, bytes) too.  A UNION ALL of the three, summed per key, finds differences on
    either side with no FULL OUTER JOIN (which SQLite lacks before 3.39)."""
    names = [*key, "files", "bytes", "counted_files", "counted_bytes"]

    def labelled(query: Select[Any], counted: bool) -> Select[Any]:
        found = list(query.selected_columns)
        zeros: list[ColumnElement[Any]] = [literal(0), literal(0)]
        values = found[: len(key)] + (zeros + found[len(key) :] if counted else found[len(key) :] + zeros)
        return query.with_only_columns(
            *[value.label(name) for value, name in zip(values, names, strict=True)]
        )

    parts = union_all(labelled(kept, False), labelled(queued, False), labelled(recount, True)).subquery()
    sums = {name: func.sum(parts.c[name]).label(name) for name in names[len(key) :]}
    keys = [parts.c[name] for name in key]
    return (
        select(*keys, *sums.values())
        .group_by(*keys)
        .having(or_(sums["files"] != sums["counted_files"], sums["bytes"] != sums["counted_bytes"]))
    )


def _account_usage(_now: datetime) -> Select[Any]:
    kept = select(AccountUsage.account, AccountUsage.rse_id, AccountUsage.files, AccountUsage.bytes)
    queued = select(
        UpdatedAccountCounter.account,
        UpdatedAccountCounter.rse_id,
        UpdatedAccountCounter.files,
        UpdatedAccountCounter.bytes,
    )
    recount = select(
        Lock.account, Lock.rse_id, func.count(), func.coalesce(func.sum(Lock.bytes), 0)
    ).group_by(Lock.account, Lock.rse_id)
    return _usage_against_recount(("account", "rse_id"), kept, queued, recount)


def _rse_usage(_now: datetime) -> Select[Any]:
    kept = select(RSEUsage.rse_id, RSEUsage.files, RSEUsage.used).where(RSEUsage.source == CATALOGUE_SOURCE)
    queued = select(UpdatedRSECounter.rse_id, UpdatedRSECounter.files, UpdatedRSECounter.bytes)
    recount = select(Replica.rse_id, func.count(), func.coalesce(func.sum(Replica.bytes), 0)).group_by(
        Replica.rse_id
    )
    return _usage_against_recount(("rse_id",), kept, queued, recount)


def _request_submitted_timeout(now: datetime) -> Select[Any]:
    since = func.coalesce(Request.submitted_at, Request.created_at)
    return select(
        Request.id.label("request_id"),
        Request.scope,
        Request.name,
        _rse_name(Request.dest_rse_id),
        Request.state,
        Request.submitted_at,
        Request.external_id,
    ).where(
        Request.state.in_((RequestState.SUBMITTING, RequestState.SUBMITTED)),
        since < now - _timeout("submitted_timeout", SUBMITTED_TIMEOUT),
    )


def _request_queued_timeout(now: datetime) -> Select[Any]:
    """QUEUED since its creation, its last submission (a retry) or its back-off, whichever is latest."""
    cutoff = now - _timeout("queued_timeout", QUEUED_TIMEOUT)
    return select(
        Request.id.label("request_id"),
        Request.scope,
        Request.name,
        _rse_name(Request.dest_rse_id),
        Request.created_at,
        Request.not_before,
        Request.retry_count,
    ).where(
        Request.state == RequestState.QUEUED,
        Request.created_at < cutoff,
        or_(Request.submitted_at.is_(None), Request.submitted_at < cutoff),
        or_(Request.not_before.is_(None), Request.not_before < cutoff),
    )


def _shared_path(_now: datetime) -> Select[Any]:
    return (
        select(
            _rse_name(Replica.rse_id),
            Replica.path,
            func.count().label("replicas"),
            func.min(Replica.scope + literal(":") + Replica.name).label("one_of_them"),
        )
        .where(Replica.path.is_not(None))
        .group_by(Replica.rse_id, Replica.path)
        .having(func.count() > 1)
    )


INVARIANTS: tuple[Invariant, ...] = (
    Invariant("replica_lock_cnt", "a replica's lock_cnt equals its locks", _replica_lock_count),
    Invariant(
        "locked_replica_tombstone",
        "a locked replica has no tombstone (the reaper never sees it)",
        _locked_replica_tombstone,
    ),
    Invariant("lock_without_replica", "no lock exists without its replica", _lock_without_replica),
    Invariant("lock_without_rule", "no lock exists without its rule", _lock_without_rule),
    Invariant(
        "rule_counters", "a rule's OK/REPLICATING/STUCK counters equal its locks by state", _rule_counters
    ),
    Invariant(
        "rule_state",
        "a rule's state follows from its counters (SUSPENDED, WAITING_APPROVAL and INJECT excepted)",
        _rule_state,
    ),
    Invariant(
        "ok_lock_replica",
        "an OK lock's replica is AVAILABLE (or TEMPORARY_UNAVAILABLE)",
        _ok_lock_replica_available,
    ),
    Invariant(
        "replicating_lock_request",
        "a REPLICATING lock has a live request, or its rule is STUCK (due for repair)",
        _replicating_lock_without_request,
    ),
    Invariant(
        "request_rule_gone",
        "no live request outside a job for a rule that is gone and a replica nobody locks (one in a job runs to its end)",
        _request_rule_gone,
    ),
    Invariant(
        "account_usage", "account usage plus queued deltas equals the recount of locks", _account_usage
    ),
    Invariant(
        "rse_usage", "RSE usage (source rucio) plus queued deltas equals the recount of replicas", _rse_usage
    ),
    Invariant(
        "request_submitted_timeout",
        "no request stays SUBMITTING/SUBMITTED past [conveyor] submitted_timeout",
        _request_submitted_timeout,
    ),
    Invariant(
        "request_queued_timeout",
        "no request stays QUEUED past [conveyor] queued_timeout",
        _request_queued_timeout,
    ),
    Invariant("shared_path", "no two replicas on one RSE share a path", _shared_path),
)


def join_by_scanning(session: Session) -> None:
    """For the rest of the session's transaction, on PostgreSQL, join by hash or merge, never
    by a nested loop of index probes.

    Every invariant reads whole tables, so a scan of each side is the right plan whatever the
    statistics say.  The planner chose otherwise from statistics a bulk load had not reached
    yet (autovacuum analyses a table a minute or so later): lock_without_replica then probed
    the replicas of each lock's RSE one by one, 30 s for 30,000 locks where the scan takes
    0.1 s.  ``SET LOCAL`` opens the transaction (core/db/plans.py) and ends with it."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL enable_nestloop = off"))


def _run(session: Session, invariant: Invariant, now: datetime, examples: int) -> Violation | None:
    """The invariant's violations: one query, the total from a window count over the same rows."""
    query = invariant.violations(now).subquery()
    rows = (
        session.execute(select(query, func.count().over().label("_total")).limit(examples)).mappings().all()
    )
    if not rows:
        return None
    shown = [{key: _shown(value) for key, value in row.items() if key != "_total"} for row in rows]
    return Violation(invariant.name, invariant.description, int(rows[0]["_total"]), shown)


def _deterministic_paths(session: Session, examples: int) -> Violation | None:
    """Replicas on deterministic RSEs whose stored path is not the RSE's algorithm's.

    Only rows that store a path are read (deterministic RSEs usually store none), streamed, and
    compared in Python: the algorithms (md5 and pluggable ones) have no portable SQL form."""
    algorithm = (
        select(RSEAttribute.value)
        .where(RSEAttribute.rse_id == Replica.rse_id, RSEAttribute.key == "lfn2pfn_algorithm")
        .scalar_subquery()
    )
    rows = session.execute(
        select(Replica.scope, Replica.name, RSE.rse, Replica.path, algorithm.label("algorithm"))
        .join(RSE, RSE.id == Replica.rse_id)
        .where(RSE.deterministic.is_(True), Replica.path.is_not(None))
        .execution_options(yield_per=1000)
    )
    found: list[dict[str, Any]] = []
    count = 0
    for scope, name, rse, path, algo in rows:
        expected = lfn2path(scope, name, algo or DEFAULT_ALGORITHM)
        if path.removeprefix("/") != expected:
            count += 1
            if len(found) < examples:
                found.append({"scope": scope, "name": name, "rse": rse, "path": path, "expected": expected})
    if not count:
        return None
    return Violation(
        "deterministic_path", "on a deterministic RSE a replica's path is the RSE's algorithm's", count, found
    )


def check_catalogue(session: Session, *, examples: int = EXAMPLES, now: datetime | None = None) -> Report:
    """Check every catalogue invariant; ``now`` (default: the clock) dates the request timeouts."""
    now = now or utcnow()
    join_by_scanning(session)
    report = Report(checked=[i.name for i in INVARIANTS] + ["deterministic_path"])
    for invariant in INVARIANTS:
        violation = _run(session, invariant, now, examples)
        if violation is not None:
            report.violations.append(violation)
    violation = _deterministic_paths(session, examples)
    if violation is not None:
        report.violations.append(violation)
    return report


# --- storage -------------------------------------------------------------------------------
def storage_settings() -> dict[str, Any]:
    """Protocol settings from ``[storage]``: the S3 credentials (other protocols ignore them)."""
    config = get_config()
    return {
        "access_key": config.get("storage", "s3_access_key") or None,
        "secret_key": config.get("storage", "s3_secret_key") or None,
        "region": config.get("storage", "s3_region"),
    }


@dataclass
class _Disagreement:
    """Files and replicas of one RSE that do not match, counted with a few examples each."""

    rse: str
    kinds: dict[str, tuple[int, list[dict[str, Any]]]] = field(default_factory=dict)

    def add(self, kind: str, example: dict[str, Any], examples: int) -> None:
        count, found = self.kinds.get(kind, (0, []))
        if len(found) < examples:
            found.append({"rse": self.rse, **example})
        self.kinds[kind] = (count + 1, found)


def _listing_protocol(session: Session, rse_id: str, settings: Mapping[str, Any]) -> Protocol:
    """The RSE's preferred read protocol, with the RSE's path algorithm."""
    records = protocols_by_rse_id(session, [rse_id])[rse_id]
    if not records:
        raise RSEProtocolNotSupported("the RSE has no protocol")
    algorithm = session.scalar(
        select(RSEAttribute.value).where(
            RSEAttribute.rse_id == rse_id, RSEAttribute.key == "lfn2pfn_algorithm"
        )
    )
    return create_protocol(
        select_protocol(records, "read"), settings, lfn2pfn_algorithm=algorithm or DEFAULT_ALGORITHM
    )


def _replica_pfns(session: Session, protocol: Protocol, rse_id: str) -> Iterator[tuple[str, Any]]:
    """(PFN, row) of every replica row on the RSE, streamed; the PFN the reaper would delete."""
    rows = session.execute(
        select(Replica.scope, Replica.name, Replica.path, Replica.bytes, Replica.state)
        .where(Replica.rse_id == rse_id)
        .execution_options(yield_per=1000)
    )
    for row in rows:
        lfn = {"scope": row.scope, "name": row.name, **({"path": row.path} if row.path else {})}
        yield protocol.lfns2pfns([lfn])[f"{row.scope}:{row.name}"], row


#: Schemes whose object keys are plain strings: ``a//b`` and ``a/b`` are two objects there.
_KEYED_SCHEMES = ("s3", "s3s")


def _file_key(pfn: str) -> str:
    """The PFN as the storage resolves it: file systems and XRootD/WebDAV servers read ``//``
    in a path as ``/`` (a name with a leading ``/`` gives ``…/c2/18//store/…`` while the
    listing says ``…/c2/18/store/…``); S3 keys are compared as they are."""
    scheme, sep, rest = pfn.partition("://")
    if not sep or scheme in _KEYED_SCHEMES:
        return pfn
    authority, slash, path = rest.partition("/")
    return f"{scheme}://{authority}{slash}{re.sub('/{2,}', '/', path)}"


def _compare_rse(session: Session, rse_id: str, rse: str, protocol: Protocol, examples: int) -> _Disagreement:
    on_disk = {_file_key(pfn): size for pfn, size in protocol.list_files()}
    found = _Disagreement(rse)
    catalogued: set[str] = set()
    for listed, row in _replica_pfns(session, protocol, rse_id):
        pfn = _file_key(listed)
        catalogued.add(pfn)
        if row.state != ReplicaState.AVAILABLE:
            continue
        size = on_disk.get(pfn)
        where = {"scope": row.scope, "name": row.name, "pfn": listed}
        if size is None:
            found.add("storage_missing", where, examples)
        elif size != row.bytes:
            found.add("storage_size", {**where, "bytes": row.bytes, "on_disk": size}, examples)
    for pfn in sorted(set(on_disk) - catalogued):
        found.add("storage_dark", {"pfn": pfn, "on_disk": on_disk[pfn]}, examples)
    return found


_STORAGE_INVARIANTS = {
    "storage_missing": "an AVAILABLE replica's file exists on its RSE",
    "storage_size": "an AVAILABLE replica's file has the replica's size",
    "storage_dark": "every file under an RSE's prefix is a replica in the catalogue",
}


def check_storage(
    session: Session,
    *,
    examples: int = EXAMPLES,
    settings: Mapping[str, Any] | None = None,
    rses: Sequence[str] | None = None,
) -> Report:
    """Walk every RSE (or those named) through its preferred read protocol and compare it
    with the catalogue, both ways.  An RSE whose protocol cannot list, or whose storage
    fails, is reported as skipped, so a partial check never passes for a full one."""
    settings = storage_settings() if settings is None else settings
    query = select(RSE.id, RSE.rse).where(RSE.deleted.is_(False)).order_by(RSE.rse)
    if rses is not None:
        query = query.where(RSE.rse.in_(list(rses)))
    report = Report(checked=list(_STORAGE_INVARIANTS))
    totals: dict[str, tuple[int, list[dict[str, Any]]]] = {}
    for rse_id, rse in session.execute(query).all():
        try:
            found = _compare_rse(session, rse_id, rse, _listing_protocol(session, rse_id, settings), examples)
        except DatamgmtError as exc:
            report.skipped.append(f"storage of {rse}: {exc}")
            continue
        for kind, (count, rows) in found.kinds.items():
            total, kept = totals.get(kind, (0, []))
            totals[kind] = (total + count, (kept + rows)[:examples])
    report.violations = [
        Violation(kind, _STORAGE_INVARIANTS[kind], *totals[kind])
        for kind in _STORAGE_INVARIANTS
        if kind in totals
    ]
    return report


def check(session: Session, *, storage: bool = False, examples: int = EXAMPLES) -> Report:
    """Everything ``datamgmt-admin check`` holds the catalogue to; ``storage`` walks the RSEs too."""
    report = check_catalogue(session, examples=examples)
    if storage:
        report.extend(check_storage(session, examples=examples))
    return report

"""Subscriptions: "whenever a new dataset or container matches this filter, create these rules".

A subscription belongs to an account and holds a *filter* and a list of *replication
rules*, both stored as JSON text in Rucio's shapes (listings return them as JSON strings,
which is what the stock client parses).  Both are validated when written, so the
transmogrifier only ever reads well-formed subscriptions.

Filter keys (Rucio's semantics: every regular expression is matched at the start of its text,
as ``re.match`` does):

* ``scope``: list of regular expressions on the DID's scope;
* ``pattern`` / ``excluded_pattern``: regular expression the name must / must not match;
* ``did_type``: list of DATASET, CONTAINER (files never match, as in Rucio);
* ``account``: list of accounts, one of which must own the DID;
* any other key: DID metadata; the DID must have the key and its value must match one of
  the listed values (a string is a regular expression on the value's text, a number or
  boolean must be equal); a list value matches when one of its elements does.

:func:`match_new_dids` is the transmogrifier's work: one batch of DIDs with ``is_new`` set,
one query for their metadata, matching in Python against the few active subscriptions,
one ``add_rule`` per created rule, then ``is_new`` cleared for the whole batch.

The expressions come from users and are matched against every new DID, so they are
compiled with RE2 (``google-re2``), whose matching time is linear in the text: a pattern
such as ``(a+)+$`` that makes a backtracking engine run for hours cannot stall the
transmogrifier.  RE2 has no backreferences or lookaround; a filter that uses them (or
that is too large to compile) is refused with InvalidObject when written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import re2
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from datamgmt.core import validation
from datamgmt.core.account import account_exists
from datamgmt.core.db.constants import DIDType, RuleGrouping, SubscriptionState
from datamgmt.core.db.models import DataIdentifier, Rule, Subscription
from datamgmt.core.db.types import utcnow
from datamgmt.core.did import COLLECTIONS
from datamgmt.core.expression import parse_tree
from datamgmt.core.keys import chunks, keys_in
from datamgmt.core.metadata import key_values
from datamgmt.core.metadata_values import KEY_RE, RESERVED_KEYS, Value
from datamgmt.core.rule import PLACEMENT_ERRORS, add_rule
from datamgmt.core.workqueue import NEW_DIDS
from datamgmt.exceptions import (
    AccountNotFound,
    DatamgmtError,
    DuplicateRule,
    InvalidObject,
    SubscriptionDuplicate,
    SubscriptionNotFound,
    UnsupportedOperation,
)

#: Subscriptions the transmogrifier applies (Rucio matches ACTIVE and UPDATED ones).
MATCHING_STATES = (SubscriptionState.ACTIVE, SubscriptionState.UPDATED)
#: Rucio filter keys whose behaviour (rule splitting, file-size bounds) is not implemented: refused, not ignored.
UNSUPPORTED_FILTER_KEYS = frozenset({"split_rule", "min_avg_file_size", "max_avg_file_size"})
#: Keys of one replication rule of a subscription, passed to ``rule.add_rule`` as they are.
RULE_KEYS = frozenset(
    {"copies", "rse_expression", "lifetime", "activity", "grouping", "weight", "source_replica_expression"}
)
MAX_JSON = 4000
MAX_NAME = 64
UPDATABLE = (
    "filter",
    "replication_rules",
    "comments",
    "lifetime",
    "retroactive",
    "dry_run",
    "priority",
    "state",
)
#: RE2's memory budget for one compiled expression (its default); a larger pattern is refused.
REGEX_MAX_MEM = 8 << 20

#: A compiled RE2 expression (``re2._Regexp``, which has ``re.Pattern``'s ``match``).
Regex = Any


# --- filters ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    """A new DID as the filter sees it: its columns and its key-value metadata."""

    scope: str
    name: str
    did_type: DIDType
    account: str
    meta: Mapping[str, Value]


@dataclass(frozen=True)
class Filter:
    """A validated, compiled subscription filter."""

    scopes: tuple[Regex, ...] = ()
    pattern: Regex | None = None
    excluded_pattern: Regex | None = None
    did_types: frozenset[DIDType] = frozenset(COLLECTIONS)
    accounts: frozenset[str] | None = None
    meta: tuple[tuple[str, tuple[Regex | int | float | bool, ...]], ...] = ()

    def matches(self, did: Candidate) -> bool:
        if did.did_type not in self.did_types:
            return False
        if self.scopes and not any(scope.match(did.scope) for scope in self.scopes):
            return False
        if self.pattern is not None and not self.pattern.match(did.name):
            return False
        if self.excluded_pattern is not None and self.excluded_pattern.match(did.name):
            return False
        if self.accounts is not None and did.account not in self.accounts:
            return False
        return all(
            key in did.meta and any(_value_matches(want, did.meta[key]) for want in wanted)
            for key, wanted in self.meta
        )


def _value_matches(wanted: Regex | int | float | bool, value: Value) -> bool:
    if isinstance(value, list):  # a list value matches when one of its elements does, as DID filters do
        return any(
            _value_matches(wanted, element) for element in value if not isinstance(element, list | dict)
        )
    if isinstance(wanted, int | float):
        # True == 1 to Python, never to a filter.
        return isinstance(value, bool) == isinstance(wanted, bool) and value == wanted
    return wanted.match(str(value)) is not None


def _regex_options() -> re2.Options:
    options = re2.Options()
    options.max_mem = REGEX_MAX_MEM
    # A refused pattern is the user's error, reported to them; RE2 need not print it to stderr.
    options.log_errors = False
    return options


def _regex(value: object, what: str) -> Regex:
    """``value`` compiled by RE2; InvalidObject says why it cannot be (syntax, or a feature RE2 lacks)."""
    if not isinstance(value, str):
        raise InvalidObject(f"{what} must be a regular expression string, not {validation.shown(value)}")
    try:
        return re2.compile(value, _regex_options())
    except re2.error as exc:
        reason = (
            exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        )
        raise InvalidObject(
            f"{what} {validation.shown(value)} is refused: {reason} (filters use RE2 syntax, matched in"
            " linear time: no backreferences or lookaround)"
        ) from exc


def _as_list(value: object, what: str) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise InvalidObject(f"{what} must not be an empty list")
    return items


def _meta_value(value: object, key: str) -> Regex | int | float | bool:
    if isinstance(value, str):
        return _regex(value, f"the value of {key}")
    if isinstance(value, int | float):
        return value
    raise InvalidObject(f"the value of {validation.shown(key)} must be a string, number or boolean")


def parse_filter(value: object) -> Filter:
    """A filter from its JSON form; InvalidObject names the first thing wrong with it."""
    if not isinstance(value, Mapping):
        raise InvalidObject("a subscription filter must be a JSON object")
    found: dict[str, Any] = {}
    meta = []
    for key, item in value.items():
        if key in UNSUPPORTED_FILTER_KEYS:
            raise UnsupportedOperation(f"the subscription filter key {key} is not supported")
        if key == "scope":
            found["scopes"] = tuple(_regex(s, "a scope") for s in _as_list(item, "scope"))
        elif key in ("pattern", "excluded_pattern"):
            found[key] = _regex(item, key)
        elif key == "did_type":
            types = {DIDType.parse(t) if isinstance(t, str) else None for t in _as_list(item, "did_type")}
            if not types <= set(COLLECTIONS):
                raise InvalidObject("did_type must list DATASET or CONTAINER")
            found["did_types"] = frozenset(types)
        elif key == "account":
            found["accounts"] = frozenset(validation.account_name(a) for a in _as_list(item, "account"))
        elif isinstance(key, str) and KEY_RE.fullmatch(key) and key not in RESERVED_KEYS:
            meta.append((key, tuple(_meta_value(v, key) for v in _as_list(item, key))))
        else:
            raise InvalidObject(f"{validation.shown(key)} is not a subscription filter key")
    return Filter(meta=tuple(meta), **found)


def check_replication_rules(value: object) -> list[dict[str, Any]]:
    """The rules of a subscription, checked so that ``add_rule`` can take each as keywords."""
    if not isinstance(value, list) or not value:
        raise InvalidObject("replication_rules must be a non-empty list of rules")
    checked = []
    for spec in value:
        if not isinstance(spec, Mapping):
            raise InvalidObject("each replication rule must be a JSON object")
        unknown = set(spec) - RULE_KEYS
        if unknown:
            raise InvalidObject(f"{validation.shown(sorted(unknown)[0])} is not a replication rule option")
        copies = spec.get("copies")
        if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
            raise InvalidObject("copies must be a positive integer")
        for key in ("rse_expression", "source_replica_expression"):
            expression = spec.get(key)
            if expression is None and key == "source_replica_expression":
                continue
            if not isinstance(expression, str):
                raise InvalidObject(f"{key} must be a string")
            parse_tree(expression)
        lifetime = spec.get("lifetime")
        if lifetime is not None and (
            isinstance(lifetime, bool) or not isinstance(lifetime, int) or lifetime < 0
        ):
            raise InvalidObject("a rule's lifetime must be a non-negative number of seconds")
        for key in ("activity", "weight"):
            if spec.get(key) is not None and not isinstance(spec[key], str):
                raise InvalidObject(f"{key} must be a string")
        rule = {k: v for k, v in spec.items() if v is not None}
        if "grouping" in rule:
            rule["grouping"] = RuleGrouping.parse(rule["grouping"]).name
        checked.append(rule)
    return checked


# --- writing ---------------------------------------------------------------------------------
def _json_text(value: Any, what: str) -> str:
    text = json.dumps(value)
    if len(text) > MAX_JSON:
        raise InvalidObject(f"the {what} is longer than {MAX_JSON} characters as JSON")
    return text


def _lifetime(days: object) -> datetime | None:
    """Rucio's subscription lifetime: days from now; None or False for none."""
    if days is None or days is False:
        return None
    if isinstance(days, bool) or not isinstance(days, int | float) or days <= 0:
        raise InvalidObject("lifetime must be a positive number of days")
    return utcnow() + timedelta(days=days)


def _check_retroactive(retroactive: object) -> bool:
    if retroactive:
        raise UnsupportedOperation("Retroactive mode is not implemented")
    return False


def _comments(comments: object) -> str | None:
    if comments is not None and (not isinstance(comments, str) or len(comments) > MAX_JSON):
        raise InvalidObject(f"comments must be a string of at most {MAX_JSON} characters")
    return comments


def _priority(priority: object) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise InvalidObject("priority must be an integer")
    return priority


def add_subscription(
    session: Session,
    name: str,
    account: str,
    filter_: Mapping[str, Any],
    replication_rules: Sequence[Mapping[str, Any]],
    comments: str | None = None,
    lifetime: int | float | None = None,
    retroactive: bool = False,
    dry_run: bool = False,
    priority: int = 0,
) -> str:
    """Create a subscription (Rucio's ``add_subscription``); returns its id.

    ``lifetime`` is in days; ``dry_run`` creates it INACTIVE; ``priority`` is stored as
    Rucio's ``policyid``.  The same name twice for one account is SubscriptionDuplicate.
    """
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
        raise InvalidObject(f"a subscription name is 1 to {MAX_NAME} characters")
    if not account_exists(session, account):
        raise AccountNotFound(f"Account {validation.shown(account)} does not exist")
    parse_filter(filter_)
    rules = check_replication_rules(replication_rules)
    if session.scalar(
        select(Subscription.id).where(Subscription.name == name, Subscription.account == account)
    ):
        raise SubscriptionDuplicate(f"Subscription '{name[:MAX_NAME]}' owned by {account} already exists")
    row = Subscription(
        name=name,
        account=account,
        filter=_json_text(filter_, "filter"),
        replication_rules=_json_text(rules, "replication_rules"),
        comments=_comments(comments),
        lifetime=_lifetime(lifetime),
        retroactive=_check_retroactive(retroactive),
        policyid=_priority(priority),
        state=SubscriptionState.INACTIVE if dry_run else SubscriptionState.ACTIVE,
    )
    session.add(row)
    session.flush()
    return row.id


def _get(session: Session, name: str, account: str) -> Subscription:
    row = session.scalar(
        select(Subscription).where(Subscription.name == name, Subscription.account == account)
    )
    if row is None:
        raise SubscriptionNotFound(
            f"Subscription {validation.shown(name)} of {validation.shown(account)} not found"
        )
    return row


def update_subscription(session: Session, name: str, account: str, metadata: Mapping[str, Any]) -> None:
    """Change a subscription (Rucio's ``update_subscription``): any of ``UPDATABLE``.

    As in Rucio it becomes UPDATED (still matching) unless ``dry_run`` makes it INACTIVE
    or ``state`` (ACTIVE, INACTIVE) says otherwise; options that are None stay unchanged.
    """
    # The stock client sends every option, None for "unchanged" (lifetime False removes it).
    metadata = {key: value for key, value in metadata.items() if value is not None}
    unknown = set(metadata) - set(UPDATABLE)
    if unknown:
        raise InvalidObject(f"{validation.shown(sorted(unknown)[0])} cannot be updated on a subscription")
    row = _get(session, name, account)
    state = SubscriptionState.UPDATED
    if "filter" in metadata:
        parse_filter(metadata["filter"])
        row.filter = _json_text(metadata["filter"], "filter")
    if "replication_rules" in metadata:
        row.replication_rules = _json_text(
            check_replication_rules(metadata["replication_rules"]), "replication_rules"
        )
    if "comments" in metadata:
        row.comments = _comments(metadata["comments"])
    if "lifetime" in metadata:
        row.lifetime = _lifetime(metadata["lifetime"])
    if "retroactive" in metadata:
        row.retroactive = _check_retroactive(metadata["retroactive"])
    if "priority" in metadata:
        row.policyid = _priority(metadata["priority"])
    if "state" in metadata:
        state = SubscriptionState.parse(metadata["state"])
        if state not in (SubscriptionState.ACTIVE, SubscriptionState.INACTIVE):
            raise InvalidObject("a subscription's state may be set to ACTIVE or INACTIVE")
    if metadata.get("dry_run"):
        state = SubscriptionState.INACTIVE
    row.state = state
    session.flush()


# --- reading ---------------------------------------------------------------------------------
def subscription_dict(row: Subscription) -> dict[str, Any]:
    """A subscription with Rucio's field names; filter and rules as JSON text, as Rucio sends them."""
    return {
        "id": row.id,
        "name": row.name,
        "account": row.account,
        "filter": row.filter,
        "replication_rules": row.replication_rules,
        "policyid": row.policyid,
        "state": row.state.name,
        "last_processed": row.last_processed,
        "lifetime": row.lifetime,
        "comments": row.comments,
        "retroactive": row.retroactive,
        "expired_at": row.expired_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def list_subscriptions(
    session: Session, name: str | None = None, account: str | None = None, state: str | None = None
) -> list[dict[str, Any]]:
    """Subscriptions by name, account and state, oldest first; none found is SubscriptionNotFound (Rucio)."""
    query = select(Subscription).order_by(Subscription.created_at, Subscription.id)
    if name is not None:
        query = query.where(Subscription.name == name)
    if account is not None:
        query = query.where(Subscription.account == account)
    if state is not None:
        query = query.where(Subscription.state == SubscriptionState.parse(state))
    found = [subscription_dict(row) for row in session.scalars(query)]
    if not found:
        raise SubscriptionNotFound("No subscription found with these criteria")
    return found


def get_subscription_by_id(session: Session, subscription_id: str) -> dict[str, Any]:
    row = session.get(Subscription, subscription_id) if isinstance(subscription_id, str) else None
    if row is None:
        raise SubscriptionNotFound(f"Subscription with id {validation.shown(subscription_id)} not found")
    return subscription_dict(row)


# --- the transmogrifier ----------------------------------------------------------------------
@dataclass
class MatchReport:
    """What one batch did: DIDs seen, rules created, and what could not be created."""

    dids: int = 0
    rules: list[str] = field(default_factory=list)
    #: Rules created asynchronous (INJECT) because they could not be placed now.
    deferred: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Active:
    row: Subscription
    filter: Filter
    rules: list[dict[str, Any]]


def _active_subscriptions(session: Session) -> list[_Active]:
    """The subscriptions to apply now; one whose stored JSON no longer validates becomes BROKEN
    (Rucio's state for it) instead of failing every batch."""
    now = utcnow()
    rows = session.scalars(
        select(Subscription)
        .where(
            Subscription.state.in_(MATCHING_STATES),
            or_(Subscription.lifetime.is_(None), Subscription.lifetime > now),
        )
        .order_by(Subscription.policyid.desc(), Subscription.created_at)
    )
    active = []
    for row in rows:
        try:
            active.append(
                _Active(
                    row,
                    parse_filter(json.loads(row.filter)),
                    check_replication_rules(json.loads(row.replication_rules)),
                )
            )
        except (ValueError, DatamgmtError):
            row.state = SubscriptionState.BROKEN
    return active


def _create_rule(
    session: Session, active: _Active, did: Candidate, spec: dict[str, Any], report: MatchReport
) -> None:
    """One rule of a subscription on one DID, in a savepoint so a refusal undoes only it.

    A rule that exists already (the DID matched before, or another subscription asked for
    the same rule) is DuplicateRule and skipped.  A rule that cannot be placed now (quota,
    space, availability) is created asynchronous instead: the judge-injector retries it
    and leaves it SUSPENDED with the error if it still fails, so nothing is lost silently.
    """
    arguments = {
        "dids": [{"scope": did.scope, "name": did.name}],
        "account": active.row.account,
        "subscription_id": active.row.id,
        **spec,
    }
    try:
        with session.begin_nested():
            report.rules.extend(add_rule(session, **arguments))
        return
    except DuplicateRule:
        return
    except PLACEMENT_ERRORS:
        pass
    except DatamgmtError as exc:
        report.failures.append(_failure(active, did, exc))
        return
    try:
        with session.begin_nested():
            report.deferred.extend(add_rule(session, asynchronous=True, **arguments))
    except DatamgmtError as exc:
        report.failures.append(_failure(active, did, exc))


def _failure(active: _Active, did: Candidate, exc: Exception) -> str:
    return f"subscription {active.row.id} on {did.scope}:{did.name}: {type(exc).__name__}: {exc}"


def match_new_dids(session: Session, batch: int = 100) -> MatchReport:
    """Apply the active subscriptions to up to ``batch`` new DIDs, then mark them seen.

    The batch is :data:`~datamgmt.core.workqueue.NEW_DIDS`: on PostgreSQL it is taken
    ``FOR UPDATE SKIP LOCKED``, so concurrent transmogrifiers take disjoint batches; on
    SQLite writers are serialised.  Everything (rules, ``is_new`` cleared, ``last_processed``) commits with the caller's transaction:
    a crash leaves the DIDs new and they are matched again, without duplicate rules.
    """
    rows = NEW_DIDS.pick(session, batch)
    report = MatchReport(dids=len(rows))
    if not rows:
        return report
    candidates = [row for row in rows if row.did_type in COLLECTIONS and not row.hidden]
    subscriptions = _active_subscriptions(session) if candidates else []
    if subscriptions:
        meta = key_values(session, [(row.scope, row.name) for row in candidates])
        matched: set[str] = set()
        for row in candidates:
            did = Candidate(row.scope, row.name, row.did_type, row.account, meta[(row.scope, row.name)])
            for active in subscriptions:
                if active.filter.matches(did):
                    matched.add(active.row.id)
                    for spec in active.rules:
                        _create_rule(session, active, did, spec, report)
        now = utcnow()
        for active in subscriptions:
            if active.row.id in matched:
                active.row.last_processed = now
    keys = [(row.scope, row.name) for row in rows]
    for part in chunks(keys):
        session.execute(
            update(DataIdentifier)
            .where(keys_in((DataIdentifier.scope, DataIdentifier.name), part))
            .values(is_new=False)
            .execution_options(synchronize_session=False)
        )
    session.flush()
    return report


def subscription_rule_states(
    session: Session, account: str, name: str | None = None, include_details: bool = False
) -> list[dict[str, Any]]:
    """Rules per state of an account's subscriptions (``*`` in ``account`` is a wildcard), one
    GROUP BY; a subscription without rules appears once with state None (Rucio's outer join)."""
    details = (
        (
            Subscription.state.label("subscription_state"),
            Subscription.last_processed,
            Subscription.lifetime,
            Subscription.expired_at,
            Subscription.comments,
        )
        if include_details
        else ()
    )
    keys = (Subscription.account, Subscription.name, Rule.state, *details)
    query = select(*keys, func.count(Rule.id).label("count")).outerjoin(
        Rule, Rule.subscription_id == Subscription.id
    )
    query = query.where(
        Subscription.account.like(account.replace("*", "%"))
        if "*" in account
        else Subscription.account == account
    )
    if name is not None:
        query = query.where(Subscription.name == name)
    rows = session.execute(query.group_by(*keys).order_by(Subscription.account, Subscription.name))
    return [row._asdict() for row in rows]

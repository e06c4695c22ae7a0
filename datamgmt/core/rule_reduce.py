"""Reducing a rule's copies (Rucio's ``reduce_rule``): the rule is replaced, atomically, by one
with fewer copies that is satisfied at once by replicas already in place.

The new rule has the old one's options, ``copies`` copies and the old expression less
``exclude_expression``.  It must be OK the moment it is created (it only takes locks on
replicas that are there), otherwise nothing changes: the caller's transaction rolls back
with RuleReplaceFailed.  The old rule is then removed at once, releasing its locks, so the
copies no longer held become the reaper's.
"""

from __future__ import annotations

import json

from sqlalchemy.orm import Session

from datamgmt.core.db.constants import RuleState
from datamgmt.core.db.models import Rule
from datamgmt.core.db.types import utcnow
from datamgmt.core.lock_state import purge_rule
from datamgmt.core.rule import add_rule
from datamgmt.exceptions import InputValidationError, RuleNotFound, RuleReplaceFailed


def reduce_rule(session: Session, rule_id: str, copies: object, exclude_expression: str | None = None) -> str:
    """Replace the rule by one with ``copies`` copies; returns the new rule's id."""
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
        raise InputValidationError("copies must be a positive integer")
    rule = session.get(Rule, rule_id) if isinstance(rule_id, str) else None
    if rule is None:
        raise RuleNotFound(f"No rule with the id {rule_id} found")
    if copies >= rule.copies:
        raise RuleReplaceFailed("Copies of the new rule must be smaller than the old rule.")
    if rule.state != RuleState.OK:
        raise RuleReplaceFailed("The source rule must be in state OK.")
    expression = (
        f"({rule.rse_expression})\\({exclude_expression})" if exclude_expression else rule.rse_expression
    )
    lifetime = None if rule.expires_at is None else max(int((rule.expires_at - utcnow()).total_seconds()), 0)
    (new_id,) = add_rule(
        session,
        [{"scope": rule.scope, "name": rule.name}],
        rule.account,
        copies,
        expression,
        grouping=rule.grouping.name,
        weight=rule.weight,
        lifetime=lifetime,
        locked=rule.locked,
        source_replica_expression=rule.source_replica_expression,
        activity=rule.activity,
        notify=rule.notification.name,
        purge_replicas=rule.purge_replicas,
        ignore_availability=rule.ignore_availability,
        priority=rule.priority,
        comment=rule.comments,
        meta=json.loads(rule.meta) if rule.meta else None,
        ignore_account_limit=rule.ignore_account_limit,
        subscription_id=rule.subscription_id,
    )
    replacement = session.get(Rule, new_id)
    if replacement is None or replacement.state != RuleState.OK:
        raise RuleReplaceFailed("The replacement of the rule failed.")
    purge_rule(session, rule)
    return new_id

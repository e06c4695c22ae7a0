"""Hypothesis state machine: any sequence of add, delete, update (account, move), transfer
reports and repairs keeps lock_cnt, rule counters and account usage exact.

Nothing is committed after the base catalogue: a failed step rolls back (to the base), as
the API's transaction would, and so does the end of each example."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import select

from datamgmt.core import quota, rule_update
from datamgmt.core import rule as rules
from datamgmt.core.account import add_account
from datamgmt.core.db.constants import RequestState
from datamgmt.core.db.models import Request
from datamgmt.core.request import request_done, request_failed
from datamgmt.exceptions import DatamgmtError
from tests.invariants import check_invariants

EXPRESSIONS = ["R1", "R2", "T1", "R1|R3", "T1|T2"]


@pytest.mark.usefixtures("cat")
def test_rule_invariants(cat, session):
    add_account(session, "jane", "USER")
    datasets = [cat.dataset(cat.files(3, size=10 * (i + 1), on=(("R1",), ("R3",), ())[i])) for i in range(3)]
    files = cat.files(2, on=("R2",))
    dids = datasets + files
    session.commit()

    class Machine(RuleBasedStateMachine):
        @rule(
            did=st.sampled_from(dids),
            expression=st.sampled_from(EXPRESSIONS),
            copies=st.integers(1, 2),
            grouping=st.sampled_from(["ALL", "DATASET", "NONE"]),
            account=st.sampled_from(["jdoe", "jane"]),
            purge=st.booleans(),
        )
        def add(self, did, expression, copies, grouping, account, purge):
            if account == "jane":
                for rse in cat.rse_ids:
                    quota.set_local_account_limit(session, "jane", rse, -1)
            try:
                self.created += rules.add_rule(
                    session, [did], account, copies, expression, grouping=grouping, purge_replicas=purge
                )
            except DatamgmtError:
                session.rollback()

        def __init__(self):
            super().__init__()
            # Rule ids are random: choosing among them in creation order, not sorted by id, keeps
            # a replayed example on the same rules, as hypothesis requires.
            self.created: list[str] = []

        def _some_rule(self, index):
            existing = {r["id"] for r in rules.list_rules(session)}
            ids = [rule_id for rule_id in dict.fromkeys(self.created) if rule_id in existing]
            return ids[index % len(ids)] if ids else None

        @rule(index=st.integers(0, 50))
        def delete(self, index):
            rule_id = self._some_rule(index)
            if rule_id:
                try:
                    rule_update.delete_rule(session, rule_id)
                except DatamgmtError:
                    session.rollback()

        @rule(
            index=st.integers(0, 50),
            account=st.sampled_from(["jdoe", "jane"]),
            expression=st.sampled_from(EXPRESSIONS),
            move=st.booleans(),
        )
        def update(self, index, account, expression, move):
            rule_id = self._some_rule(index)
            if rule_id:
                options = {"rse_expression": expression} if move else {"account": account}
                try:
                    child = rule_update.update_rule(session, rule_id, options)
                except DatamgmtError:
                    session.rollback()
                else:
                    self.created += [child] if child else []

        @precondition(
            lambda self: session.scalar(select(Request.id).where(Request.state == RequestState.QUEUED))
        )
        @rule(ok=st.booleans())
        def transfer(self, ok):
            request = session.scalar(select(Request).where(Request.state == RequestState.QUEUED).limit(1))
            request.state = RequestState.SUBMITTED
            session.flush()
            if ok:
                request_done(session, request.id)
            else:
                request_failed(session, request.id, "failed", retry_limit=0)

        @rule(index=st.integers(0, 50))
        def repair(self, index):
            rule_id = self._some_rule(index)
            if rule_id:
                rules.repair_rule(session, rule_id)

        @invariant()
        def consistent(self):
            check_invariants(session)

        def teardown(self):
            session.rollback()  # every example starts from the committed base catalogue

    Machine.TestCase.settings = settings(
        max_examples=15, stateful_step_count=12, deadline=None, suppress_health_check=list(HealthCheck)
    )
    Machine.TestCase().runTest()

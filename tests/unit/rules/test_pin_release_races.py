"""A staging rule removed while the stager sends its STAGEIN (PostgreSQL: SQLite runs one writer
at a time, so the interleaving cannot arise there).

The removal chose the requests whose pins to release from its statement's snapshot, where the
request the stager was recording under its job still looked QUEUED: no pin release was queued,
the cancellation of queued requests then waited for the stager, found the request sent and
kept it, and the pin its job made was never given back.  The requests are now chosen under their
row locks, which wait for the stager and see the request SUBMITTING.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from datamgmt.core import inflight, rule_update
from datamgmt.core import rule as rules
from datamgmt.core import transfer as core
from datamgmt.core.db.constants import RequestType
from datamgmt.core.db.models import PinRelease, Request
from datamgmt.core.db.session import transaction
from datamgmt.core.quota import set_local_account_limit
from datamgmt.core.rse import add_rse, add_rse_attribute
from tests.unit.rules.conftest import Catalogue, behind_a_lock
from tests.unit.rules.test_rule_removal_races import postgresql_only

URL = "davs://tape:443/mock/file"


def _staging_rule(cat: Catalogue, session: Session) -> str:
    """A rule on a ``staging_required`` tape holding a file there: it waits for a STAGEIN."""
    cat.rse_ids["TAPE"] = add_rse(session, "TAPE", rse_type="TAPE")
    add_rse_attribute(session, "TAPE", "staging_required", True)
    set_local_account_limit(session, "jdoe", "TAPE", -1)
    f = cat.files(1, on=("TAPE",))[0]
    (rule_id,) = rules.add_rule(session, [f], "jdoe", 1, "TAPE", lifetime=3600)
    session.commit()
    return rule_id


def _sending(cat: Catalogue, session: Session) -> str:
    """The stager claims the STAGEIN and records it SUBMITTING under job ``job-1``; returns its id."""
    (queued,) = core.claim_queued(session, "stager", 10, 60, request_types=[RequestType.STAGEIN])
    sent = inflight.Submission(
        request_id=queued.id,
        external_id="job-1",
        external_host="https://fts:8446",
        transfertool="fts3",
        source_rse_id=cat.rse_ids["TAPE"],
        dest_url=URL,
        external_key="key-1",
    )
    assert inflight.mark_submitting(session, "stager", [sent], 60) == {queued.id}
    return queued.id


def test_a_stagein_sent_while_its_rule_is_removed_has_its_pin_released(
    cat: Catalogue, session: Session, db: str
) -> None:
    postgresql_only(db)
    rule_id = _staging_rule(cat, session)
    with transaction(db) as stager:
        request_id = _sending(cat, stager)
        removal = behind_a_lock(stager, db, lambda api: rule_update.delete_rule(api, rule_id))
    assert removal() is None, "the rule's removal failed"
    session.expire_all()
    released = session.execute(select(PinRelease.request_id, PinRelease.url, PinRelease.external_id)).all()
    assert released == [(request_id, URL, "job-1")], "the pin the job makes is never given back"
    assert session.scalar(select(Request.id).where(Request.id == request_id)) is None

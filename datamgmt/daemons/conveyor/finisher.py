"""conveyor-finisher: requests whose transfer the tool forgot, or that never reached a tool.

* LOST (the tool does not know the external id: the local tool after a restart, a purged FTS
  job), NO_SOURCES, MISMATCH_SCHEME, SUBMISSION_FAILED (set by the submitter) →
  :func:`datamgmt.core.request.requests_failed`, which retries while ``[conveyor] max_retries``
  allows and then makes the replica UNAVAILABLE and the lock and rule STUCK.  A LOST transfer
  counts as an attempt like any failure, and is logged at WARNING: the file may have been
  copied already, and a tool that keeps losing transfers must not copy them again forever.

Outcomes of transfers that ran (DONE, FAILED) are applied by the poller through the same core
functions.  A batch is one transaction; if it fails it is redone one request per transaction
so one bad request (which keeps its lease as back-off) cannot block the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from datamgmt.config import get_config
from datamgmt.core import claim, inflight
from datamgmt.core.db.constants import RequestState
from datamgmt.core.db.models import Request
from datamgmt.core.db.session import transaction
from datamgmt.core.request import requests_failed
from datamgmt.core.rse import rse_names_by_id
from datamgmt.daemons.common import Daemon
from datamgmt.daemons.conveyor.outcomes import report_outcomes


class Finisher(Daemon):
    name = "conveyor-finisher"
    default_batch = 500

    def __init__(self, worker_id: str | None = None, db_url: str | None = None) -> None:
        super().__init__(worker_id, db_url)
        self.max_retries = get_config().get_int("conveyor", "max_retries")

    def run_once(self, batch: int) -> int:
        with transaction(self.db_url) as session:
            requests = inflight.claim_finished(session, self.worker_id, batch, self.lease_seconds)
        self.idle = not requests
        if not requests:
            return 0
        try:
            with transaction(self.db_url) as session:
                return self._finish(session, requests)
        except Exception:
            self.log.exception("batch failed, finishing one request at a time")
        finished = 0
        for request in requests:
            try:
                with transaction(self.db_url) as session:
                    finished += self._finish(session, [request])
            except Exception:
                self.record_item(False)
                self.log.exception("request failed", extra={"fields": {"request": request.id}})
        return finished

    def _finish(self, session: Session, requests: Sequence[inflight.FinishedRequest]) -> int:
        keys = [(r.id,) for r in requests]
        held = {key[0] for key in claim.confirm(session, Request, self.worker_id, keys, self.lease_seconds)}
        mine = [r for r in requests if r.id in held]
        self._warn_lost(session, [r for r in mine if r.state is RequestState.LOST])
        reasons = {r.id: r.err_msg or r.state.name for r in mine}
        report_outcomes(self.log, session, [], reasons, requests_failed(session, reasons, self.max_retries))
        claim.release(session, Request, self.worker_id, [(r.id,) for r in mine])
        for _ in mine:
            self.record_item(True)
        return len(mine)


    def _warn_lost(self, session: Session, lost: Sequence[inflight.FinishedRequest]) -> None:
        names = rse_names_by_id(session, sorted({r.dest_rse_id for r in lost})) if lost else {}
        for request in lost:
            self.log.warning(
                "transfer lost by its tool; retried as a counted attempt",
                extra={
                    "fields": {
                        "request": request.id,
                        "did": f"{request.scope}:{request.name}",
                        "rse": names.get(request.dest_rse_id, request.dest_rse_id),
                        "external_id": request.external_id,
                    }
                },
            )


DAEMON = Finisher

"""conveyor-finisher: requests whose transfer the tool forgot, or that never reached a tool.

* LOST (the tool does not know the external id: the local tool after a restart, a purged FTS
  job), NO_SOURCES, MISMATCH_SCHEME, SUBMISSION_FAILED (set by the submitter) →
  :func:`datamgmt.core.request.requests_failed`, which retries while ``[conveyor] max_retries``
  allows and then makes the replica UNAVAILABLE and the lock and rule STUCK.  A LOST transfer
  counts as an attempt like any failure, and is logged at WARNING: the file may have been
  copied already, and a tool that keeps losing transfers must not copy them again forever.

* Pins of removed staging rules (:mod:`datamgmt.core.pins`) are released through the tool that
  staged them (a running recall is cancelled; the local tool drops its staged marker); a tool
  that cannot answer leaves the release leased, as back-off, and it is tried again.

Outcomes of transfers that ran (DONE, FAILED) are applied by the poller through the same core
functions.  A batch is one transaction; if it fails it is redone one request per transaction
so one bad request (which keeps its lease as back-off) cannot block the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from datamgmt.config import get_config
from datamgmt.core import claim, inflight, pins
from datamgmt.core.db.constants import RequestState
from datamgmt.core.db.models import Request
from datamgmt.core.db.session import transaction
from datamgmt.core.request import requests_failed
from datamgmt.core.rse import rse_names_by_id
from datamgmt.core.vo import DEFAULT_VO
from datamgmt.daemons.common import Daemon
from datamgmt.daemons.conveyor import tools
from datamgmt.daemons.conveyor.outcomes import report_outcomes
from datamgmt.exceptions import TransferToolError
from datamgmt.transfertool.base import Pin


class Finisher(Daemon):
    name = "conveyor-finisher"
    default_batch = 500

    def __init__(self, worker_id: str | None = None, db_url: str | None = None, vo: str = DEFAULT_VO) -> None:
        super().__init__(worker_id, db_url, vo)
        self.max_retries = get_config().get_int("conveyor", "max_retries")

    def run_once(self, batch: int) -> int:
        released = self._release_pins(batch)
        with transaction(self.db_url) as session:
            requests = inflight.claim_finished(session, self.worker_id, batch, self.lease_seconds)
        self.idle = not requests and not released
        return released + (self._finish_all(requests) if requests else 0)

    def _release_pins(self, batch: int) -> int:
        """Release the pins of removed staging rules, one bulk call per tool and endpoint."""
        with transaction(self.db_url) as session:
            due = pins.claim_releases(session, self.worker_id, batch, self.lease_seconds)
        groups: dict[tuple[str | None, str | None], list[pins.PendingRelease]] = {}
        for item in due:
            groups.setdefault((item.transfertool, item.external_host), []).append(item)
        done: list[str] = []
        for (tool_name, host), group in groups.items():
            try:
                tools.tool_for(tool_name, host, self.db_url, self.vo).release(
                    [Pin(p.url, p.external_id) for p in group]
                )
            except TransferToolError as exc:
                self.log.warning(
                    "pin release failed", extra={"fields": {"host": host, "error": str(exc)[:300]}}
                )
                continue
            done.extend(p.id for p in group)
        if done:
            with transaction(self.db_url) as session:
                pins.released(session, self.worker_id, done)
            self.log.info("pins released", extra={"fields": {"pins": len(done)}})
        return len(done)

    def _finish_all(self, requests: Sequence[inflight.FinishedRequest]) -> int:
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

"""conveyor-poller: ask the transfer tools about SUBMITTED requests in bulk and apply outcomes.

A batch claims SUBMITTED requests (lease) and queries each tool and endpoint once for all their
external ids (the tools split them into batches the server accepts).  Then one transaction
applies what ended, all DONE requests through one :func:`datamgmt.core.request.requests_done`
(replicas AVAILABLE, locks OK, rule counters and states, outbox messages) and all FAILED ones
through one :func:`~datamgmt.core.request.requests_failed` (queued again from a lower-ranked
source while ``[conveyor] max_retries`` allows, else replica UNAVAILABLE and lock and rule
STUCK), each a fixed number of set-based statements for the whole batch.  Those two
own the request's DONE/FAILED states, which is why the outcome is applied here rather than
written as a state for a later daemon.  Transfers the tool no longer knows become LOST for the
finisher.  Still-running requests are released with a hold of ``[conveyor] poll_interval``
seconds; when a tool cannot answer, the lease stays as the back-off and they are asked again.

Each report is kept on its request (``external_state``, and when FTS staged the source, the
staging start and end), so the request shows its tape phases (FTS's STAGING and ARCHIVING)
apart from the copy.

Nothing stays SUBMITTED forever: a request without an outcome ``[conveyor] submitted_timeout``
seconds after its submission (the tool keeps answering "running", or never answers at all) has
its job cancelled where the tool still answers, and fails as an attempt, so it is retried while
``max_retries`` allows and then sticks.  The one exception is a request at its retry limit
whose cancel failed: its job may still copy, so it stays SUBMITTED under that job, asked about
and cancelled again each poll, until the tool answers for it (failed, it would no longer
protect its replica row, and a late copy could land as a dark file once the row was reaped).
If applying the batch fails, it is applied one request per transaction so one bad request
cannot block the rest.  A transfer the tool reports STAGING or ARCHIVING is not overdue: the
tool bounds those phases itself (``bring_online``, ``archive_timeout``, which may well exceed
``submitted_timeout``) and reports their failure; and after a recall the copy's
``submitted_timeout`` counts from the end of staging.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from sqlalchemy.orm import Session

from datamgmt.config import get_config
from datamgmt.core import claim, inflight
from datamgmt.core.db.models import Request
from datamgmt.core.db.session import transaction
from datamgmt.core.db.types import utcnow
from datamgmt.core.request import record_external_states, requests_done, requests_failed
from datamgmt.core.vo import DEFAULT_VO
from datamgmt.daemons.common import Daemon
from datamgmt.daemons.conveyor import tools
from datamgmt.daemons.conveyor.outcomes import report_outcomes
from datamgmt.exceptions import TransferToolError
from datamgmt.transfertool.base import TransferState, TransferStatus

#: Tool states of a transfer whose length the tool itself bounds (tape recall and archiving).
TAPE_PHASES = frozenset({"STAGING", "ARCHIVING"})


class Poller(Daemon):
    name = "conveyor-poller"
    default_batch = 1000

    def __init__(self, worker_id: str | None = None, db_url: str | None = None, vo: str = DEFAULT_VO) -> None:
        super().__init__(worker_id, db_url, vo)
        config = get_config()
        self.poll_interval = config.get_int("conveyor", "poll_interval", 5)
        self.max_retries = config.get_int("conveyor", "max_retries")
        self.submitted_timeout = config.get_int("conveyor", "submitted_timeout")

    def run_once(self, batch: int) -> int:
        with transaction(self.db_url) as session:
            requests = inflight.claim_submitted(session, self.worker_id, batch, self.lease_seconds)
        groups: dict[tuple[str | None, str | None], list[str]] = defaultdict(list)
        for request in requests:
            groups[(request.transfertool, request.external_host)].append(request.external_id)
        statuses: list[TransferStatus] = []
        for (tool_name, host), external_ids in groups.items():
            try:
                statuses.extend(tools.tool_for(tool_name, host, self.db_url, self.vo).query(external_ids))
            except TransferToolError as exc:
                self.log.warning("query failed", extra={"fields": {"host": host, "error": str(exc)[:300]}})
        finished, lost = inflight.terminal_outcomes(requests, statuses)
        progress = _progress(requests, statuses)
        stale, uncancelled = self._give_up_on(requests, finished, lost, progress)
        answered = {s.external_id for s in statuses}
        running = [(r.id,) for r in requests if r.external_id in answered or r.id in stale]
        try:
            with transaction(self.db_url) as session:
                changed = self._apply(session, finished, lost, running, stale, progress, uncancelled)
        except Exception:
            self.log.exception("batch failed, applying one request at a time")
            changed = self._apply_singly(finished, lost, running, stale, progress, uncancelled)
        self.idle = changed == 0
        return changed

    def _give_up_on(
        self,
        requests: Sequence[inflight.SubmittedRequest],
        finished: Sequence[TransferStatus],
        lost: Sequence[str],
        progress: Mapping[str, TransferStatus],
    ) -> tuple[dict[str, str], set[str]]:
        """Overdue requests (no outcome ``submitted_timeout`` seconds after submission, and not
        staging or archiving): cancel their jobs where the tool answers.  Returns
        ``{request_id: reason}`` to fail them with, and the requests whose cancel failed: their job
        may still run, so their retry keeps its id and key (a resubmission then meets the job as a
        duplicate instead of copying again)."""
        now = utcnow()
        running = [(rid, s) for rid, s in progress.items() if s.state is TransferState.SUBMITTED]
        in_tape_phase = [rid for rid, s in running if s.external_state in TAPE_PHASES]
        recently_staged = [
            rid
            for rid, s in running
            if s.staging_finished is not None
            and (now - s.staging_finished).total_seconds() < self.submitted_timeout
        ]
        settled = (
            [s.request_id for s in finished if s.request_id] + list(lost) + in_tape_phase + recently_staged
        )
        stale = inflight.overdue(requests, settled, self.submitted_timeout, now)
        groups: dict[tuple[str | None, str | None], set[str]] = defaultdict(set)
        for request in stale:
            groups[(request.transfertool, request.external_host)].add(request.external_id)
        uncancelled: set[str] = set()
        for (tool_name, host), external_ids in groups.items():
            try:
                tools.tool_for(tool_name, host, self.db_url, self.vo).cancel(sorted(external_ids))
            except TransferToolError as exc:
                self.log.warning("cancel failed", extra={"fields": {"host": host, "error": str(exc)[:300]}})
                uncancelled.update(
                    r.id for r in stale if (r.transfertool, r.external_host) == (tool_name, host)
                )
        if stale:
            self.log.warning(
                "transfers without an outcome after submitted_timeout: given up as failed attempts",
                extra={
                    "fields": {
                        "requests": len(stale),
                        "cancel_failed": len(uncancelled),
                        "example": stale[0].id,
                        "job": stale[0].external_id,
                    }
                },
            )
        reasons = {
            r.id: f"no outcome from {r.transfertool or 'the transfer tool'} job {r.external_id} within "
            f"[conveyor] submitted_timeout ({self.submitted_timeout} s); "
            + ("its cancel failed" if r.id in uncancelled else "cancelled")
            for r in stale
        }
        return reasons, uncancelled

    def _apply(
        self,
        session: Session,
        finished: Sequence[TransferStatus],
        lost: Sequence[str],
        running: list[claim.Key],
        stale: Mapping[str, str],
        progress: Mapping[str, TransferStatus],
        uncancelled: set[str],
    ) -> int:
        held = {
            key[0] for key in claim.confirm(session, Request, self.worker_id, running, self.lease_seconds)
        }
        record_external_states(session, [status for rid, status in progress.items() if rid in held])
        mine = [s for s in finished if s.request_id in held]
        done = requests_done(
            session, [s.request_id for s in mine if s.request_id and s.state is TransferState.DONE]
        )
        overdue = {rid: reason for rid, reason in stale.items() if rid in held}
        failures = {
            s.request_id: s.reason or "transfer failed"
            for s in mine
            if s.request_id and s.state is not TransferState.DONE
        }
        reasons = {**overdue, **failures}
        unconfirmed = uncancelled & overdue.keys()
        outcome = requests_failed(session, reasons, self.max_retries, keep_job=unconfirmed)
        report_outcomes(self.log, session, done, reasons, outcome)
        held = sorted(unconfirmed - outcome.keys())
        if held:
            self.log.warning(
                "transfers at their retry limit whose cancel failed: kept under their job until the tool answers",
                extra={"fields": {"requests": len(held), "example": held[0]}},
            )
        changed = len(mine) + len(overdue) - len(held) + inflight.mark_lost(session, lost)
        claim.release(session, Request, self.worker_id, running, self.poll_interval)
        for _ in mine:
            self.record_item(True)
        return changed

    def _apply_singly(
        self,
        finished: Sequence[TransferStatus],
        lost: Sequence[str],
        running: list[claim.Key],
        stale: Mapping[str, str],
        progress: Mapping[str, TransferStatus],
        uncancelled: set[str],
    ) -> int:
        changed = 0
        by_request = {s.request_id: s for s in finished}
        for key in running:
            status = by_request.get(key[0])
            only = {key[0]: stale[key[0]]} if key[0] in stale else {}
            try:
                with transaction(self.db_url) as session:
                    mine = {key[0]: progress[key[0]]} if key[0] in progress else {}
                    changed += self._apply(
                        session, [status] if status else [], [], [key], only, mine, uncancelled
                    )
            except Exception:
                self.record_item(False)
                self.log.exception("request failed", extra={"fields": {"request": key[0]}})
        with transaction(self.db_url) as session:
            changed += inflight.mark_lost(session, lost)
        return changed


def _progress(
    requests: Sequence[inflight.SubmittedRequest], statuses: Sequence[TransferStatus]
) -> dict[str, TransferStatus]:
    """``{request_id: report}`` of the claimed requests the tool reported a state of, running
    or ended, from reports about their current external id only."""
    current = {(r.id, r.external_id) for r in requests}
    return {
        s.request_id: s
        for s in statuses
        if s.request_id is not None and s.external_state and (s.request_id, s.external_id) in current
    }


DAEMON = Poller

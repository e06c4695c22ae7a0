"""conveyor-submitter: claim QUEUED requests, route them, hand them to the transfer tool in bulk.

One batch is three steps, so no database transaction is open while a transfer tool answers:

1. one transaction claims the batch (lease), routes it (:func:`datamgmt.core.transfer.plan_transfers`:
   throttler, source ranking, protocol matching, URLs), marks unroutable requests for the finisher
   and releases throttled ones with a short hold;
2. the specs go to the tool, one bulk ``submit`` per tool and endpoint;
3. one transaction records ``{request_id: external_id}`` right away (:func:`~datamgmt.core.transfer.
   mark_submitted`).

A request the tool did not accept (FTS answering 500, a timeout) stays QUEUED and is released
with a back-off hold; its next submission is safe because FTS jobs carry deterministic ids (a job
that did reach FTS answers 409 and keeps its id) and a local copy overwrites its destination.
"""

from __future__ import annotations

from collections import defaultdict

from datamgmt.config import get_config
from datamgmt.core import claim
from datamgmt.core import transfer as core
from datamgmt.core.db.models import Request
from datamgmt.core.db.session import transaction
from datamgmt.daemons.common import Daemon
from datamgmt.daemons.conveyor import tools
from datamgmt.exceptions import ConfigurationError, TransferToolError


def activity_limits() -> dict[str, int]:
    """``[conveyor] activity_limits``: ``Activity A=100, Express=10`` → in-flight limit per activity."""
    raw = get_config().get("conveyor", "activity_limits", "")
    limits = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        activity, _, value = item.rpartition("=")
        try:
            limits[activity.strip()] = int(value)
        except ValueError as exc:
            raise ConfigurationError(f"[conveyor] activity_limits: {item!r} is not ACTIVITY=NUMBER") from exc
    return limits


class Submitter(Daemon):
    name = "conveyor-submitter"
    default_batch = 500

    def __init__(self, worker_id: str | None = None, db_url: str | None = None) -> None:
        super().__init__(worker_id, db_url)
        config = get_config()
        self.tool_name = tools.configured_tool()
        self.max_active_per_rse = config.get_int("conveyor", "max_active_per_rse")
        self.activity_limits = activity_limits()
        #: Seconds a throttled or unsubmitted request waits before it may be claimed again.
        self.retry_hold = config.get_int("conveyor", "submit_retry_seconds", 10)

    def run_once(self, batch: int) -> int:
        with transaction(self.db_url) as session:
            requests = core.claim_queued(session, self.worker_id, batch, self.lease_seconds)
            plan = core.plan_transfers(
                session,
                requests,
                max_active_per_rse=self.max_active_per_rse,
                activity_limits=self.activity_limits,
            )
            core.mark_unroutable(session, self.worker_id, plan.unroutable)
            claim.release(session, Request, self.worker_id, [(i,) for i in plan.throttled], self.retry_hold)
        self.idle = not requests
        submissions = self._submit(plan.transfers)
        not_taken = {t.request.id for t in plan.transfers} - {s.request_id for s in submissions}
        with transaction(self.db_url) as session:
            core.mark_submitted(session, self.worker_id, submissions)
            claim.release(
                session, Request, self.worker_id, [(i,) for i in sorted(not_taken)], self.retry_hold
            )
        if plan.unroutable or not_taken or plan.throttled:
            self.log.info(
                "not submitted",
                extra={
                    "fields": {
                        "unroutable": len(plan.unroutable),
                        "retry_later": len(not_taken),
                        "throttled": len(plan.throttled),
                    }
                },
            )
        return len(submissions) + len(plan.unroutable)

    def _submit(self, transfers: list[core.PlannedTransfer]) -> list[core.Submission]:
        """Bulk-submit per endpoint; a failing endpoint only holds back its own requests."""
        groups: dict[str, list[core.PlannedTransfer]] = defaultdict(list)
        for planned in transfers:
            host = (
                tools.fts_endpoint(planned.fts_endpoint)
                if self.tool_name == tools.FTS3
                else core.local_host()
            )
            groups[host].append(planned)
        submissions: list[core.Submission] = []
        for host, group in groups.items():
            tool = tools.fts_tool(host) if self.tool_name == tools.FTS3 else tools.local_tool()
            try:
                external_ids = tool.submit([planned.spec for planned in group])
            except TransferToolError as exc:
                self.log.warning(
                    "submission failed", extra={"fields": {"host": host, "error": str(exc)[:300]}}
                )
                continue
            submissions.extend(
                core.Submission(
                    request_id=planned.request.id,
                    external_id=external_ids[planned.request.id],
                    external_host=host,
                    transfertool=self.tool_name,
                    source_rse_id=planned.source_rse_id,
                    dest_url=planned.spec.destination,
                )
                for planned in group
                if planned.request.id in external_ids
            )
        return submissions


DAEMON = Submitter

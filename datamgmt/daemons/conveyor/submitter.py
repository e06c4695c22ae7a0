"""conveyor-submitter: claim QUEUED requests, route them, hand them to the transfer tool in bulk.

No database transaction is open while a transfer tool answers, and no request can be in a job
the catalogue does not know of.  One batch:

1. one transaction claims the batch (lease), routes it (:func:`datamgmt.core.transfer.plan_transfers`:
   throttler, source ranking, protocol matching, URLs), marks unroutable requests for the finisher
   and releases throttled ones with a short hold;
2. the tool groups the specs into jobs and chooses their external ids (``prepare``), and one
   transaction records them: SUBMITTING (:func:`~datamgmt.core.inflight.mark_submitting`);
3. the jobs go to the tool, one bulk ``submit`` per tool and endpoint;
4. one transaction records what the tool confirmed: SUBMITTED (:func:`~datamgmt.core.inflight.mark_submitted`),
   and what it refused (FTS's ``400 Bad request``): SUBMISSION_FAILED, a counted attempt for the finisher.

A request whose submission was not confirmed (FTS answering 500, a timeout after FTS created the
job, a crash before step 4) stays SUBMITTING and keeps its lease as back-off.  When the lease has
run out, the submitter asks the tool about it under its recorded id before anything else: if the
job holds it, it is SUBMITTED under that job; if the job exists without it, it is QUEUED again,
not counted as an attempt, and submitted afresh with a new job id (jobs do not grow); if the tool
does not know the job, the submission may still be on its way (a slow server, or another
submitter whose lease ran out while it was sending), so it is QUEUED again *keeping* its job's
key and id, and sent again only in a job of that key: of the two submissions, FTS refuses the
second as a duplicate (409).  So a request is never mapped to a job that lacks it, never sent
again while a job holds it, and never in two jobs.  Only
a tool that cannot be asked for ``[conveyor] submitted_timeout`` seconds after the submission
ends the wait: the request then fails as an attempt (SUBMISSION_FAILED) and is retried.  At its
retry limit it waits on: its job may exist and copy, and failed, the request would no longer
protect its replica row (a late copy could land as a dark file once the row was reaped).

STAGEIN requests (recalls from tape, in place or into a staging buffer) are the submitter's too,
unless ``[conveyor] separate_stager`` is set: then the conveyor-stager (:mod:`.stager`, Rucio's
name) submits them and the submitter only transfers, so a long queue of recalls and the copies
between disks never hold each other up, and each scales with its own instances.
"""

from __future__ import annotations

from collections import defaultdict

from datamgmt.config import get_config
from datamgmt.core import claim, inflight, workqueue
from datamgmt.core import transfer as core
from datamgmt.core.db.constants import RequestState, RequestType
from datamgmt.core.db.models import Request
from datamgmt.core.db.session import transaction
from datamgmt.core.db.types import utcnow
from datamgmt.core.vo import DEFAULT_VO
from datamgmt.daemons.common import Daemon
from datamgmt.daemons.conveyor import tools
from datamgmt.daemons.conveyor.local_transfers import CatalogueLocalTool
from datamgmt.exceptions import ConfigurationError, TransferToolError
from datamgmt.transfertool.base import Submitted, TransferJob


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


def _only(job: TransferJob, request_ids: set[str]) -> TransferJob:
    """``job`` without the transfers whose requests are not in ``request_ids`` (a lease lost
    before they were recorded: another worker owns them now)."""
    transfers = [spec for spec in job.transfers if spec.request_id in request_ids]
    if len(transfers) == len(job.transfers):
        return job
    return TransferJob(transfers, {s.request_id: job.external_ids[s.request_id] for s in transfers}, job.key)


class Submitter(Daemon):
    name = "conveyor-submitter"
    wakes_on = workqueue.QUEUED_REQUESTS
    default_batch = 500
    #: The request types this daemon submits (None: all of them).
    request_types: tuple[RequestType, ...] | None = None

    def __init__(self, worker_id: str | None = None, db_url: str | None = None, vo: str = DEFAULT_VO) -> None:
        super().__init__(worker_id, db_url, vo)
        config = get_config()
        self.tool_name = tools.configured_tool()
        self.max_active_per_rse = config.get_int("conveyor", "max_active_per_rse")
        self.activity_limits = activity_limits()
        #: Seconds a throttled or unsubmitted request waits before it may be claimed again.
        self.retry_hold = config.get_int("conveyor", "submit_retry_seconds", 10)
        self.submitted_timeout = config.get_int("conveyor", "submitted_timeout")
        self.max_retries = config.get_int("conveyor", "max_retries")
        if self.request_types is None and config.get_bool("conveyor", "separate_stager", False):
            self.request_types = (RequestType.TRANSFER,)  # STAGEIN is the conveyor-stager's
        if self.tool_name == tools.LOCAL:
            tools.local_tool(self.db_url, copying=True, vo=self.vo)  # this process runs the local copies

    def run_once(self, batch: int) -> int:
        looked_up = self._look_up_unanswered(batch)
        with transaction(self.db_url) as session:
            requests = core.claim_queued(
                session, self.worker_id, batch, self.lease_seconds, self.request_types
            )
            plan = core.plan_transfers(
                session,
                requests,
                max_active_per_rse=self.max_active_per_rse,
                activity_limits=self.activity_limits,
            )
            inflight.mark_unroutable(session, self.worker_id, plan.unroutable)
            claim.release(session, Request, self.worker_id, [(i,) for i in plan.throttled], self.retry_hold)
        submitted = 0
        for host, group in self._by_endpoint(plan.transfers).items():
            submitted += self._submit(host, group)
        copying = self._local_copies_running()
        self.idle = not requests and not looked_up and not copying
        if plan.unroutable or plan.throttled:
            self.log.info(
                "not submitted",
                extra={"fields": {"unroutable": len(plan.unroutable), "throttled": len(plan.throttled)}},
            )
        return submitted + len(plan.unroutable) + looked_up

    def _local_copies_running(self) -> int:
        """Local copies this process is still running, after waiting a little for them: a
        ``--run-once`` submitter stays until they have ended and been recorded."""
        tool = tools.local_tool(self.db_url, vo=self.vo) if self.tool_name == tools.LOCAL else None
        return tool.settle(1.0) if isinstance(tool, CatalogueLocalTool) else 0

    def _host(self, planned: core.PlannedTransfer) -> str:
        if self.tool_name == tools.FTS3:
            return tools.fts_endpoint(planned.fts_endpoint)
        return inflight.local_host()

    def _by_endpoint(self, transfers: list[core.PlannedTransfer]) -> dict[str, list[core.PlannedTransfer]]:
        groups: dict[str, list[core.PlannedTransfer]] = defaultdict(list)
        for planned in transfers:
            groups[self._host(planned)].append(planned)
        return groups

    def _submit(self, host: str, group: list[core.PlannedTransfer]) -> int:
        """Prepare, record, submit and confirm one endpoint's share; a failing endpoint only
        holds back its own requests."""
        tool = (
            tools.fts_tool(host)
            if self.tool_name == tools.FTS3
            else tools.local_tool(self.db_url, vo=self.vo)
        )
        keys = [(planned.request.id,) for planned in group]
        try:
            jobs = tool.prepare([planned.spec for planned in group])
        except TransferToolError as exc:
            self.log.warning("endpoint unusable", extra={"fields": {"host": host, "error": str(exc)[:300]}})
            with transaction(self.db_url) as session:
                claim.release(session, Request, self.worker_id, keys, self.retry_hold)
            return 0
        external_ids = {rid: eid for job in jobs for rid, eid in job.external_ids.items()}
        keys_of = {rid: job.key for job in jobs for rid in job.external_ids}
        with transaction(self.db_url) as session:
            recorded = inflight.mark_submitting(
                session,
                self.worker_id,
                [
                    inflight.Submission(
                        request_id=planned.request.id,
                        external_id=external_ids[planned.request.id],
                        external_key=keys_of[planned.request.id],
                        external_host=host,
                        transfertool=self.tool_name,
                        source_rse_id=planned.source_rse_id,
                        dest_url=planned.spec.destination,
                    )
                    for planned in group
                ],
                self.lease_seconds,
            )
        jobs = [_only(job, recorded) for job in jobs if recorded & job.external_ids.keys()]
        try:
            accepted = tool.submit(jobs)
        except TransferToolError as exc:
            accepted = Submitted()
            self.log.warning("submission failed", extra={"fields": {"host": host, "error": str(exc)[:300]}})
        refused = {rid: (RequestState.SUBMISSION_FAILED, reason) for rid, reason in accepted.refused.items()}
        with transaction(self.db_url) as session:
            confirmed = inflight.mark_submitted(session, self.worker_id, accepted)
            inflight.mark_unroutable(session, self.worker_id, refused)
        unconfirmed = len(recorded) - len(accepted) - len(refused)
        if unconfirmed:
            self.log.info(
                "submission unconfirmed; looked up again when its lease runs out",
                extra={"fields": {"host": host, "unconfirmed": unconfirmed}},
            )
        return confirmed + len(refused)

    def _look_up_unanswered(self, batch: int) -> int:
        """Settle SUBMITTING requests left by an unanswered submission: SUBMITTED under their job
        if it holds them, else QUEUED again.  A tool that cannot answer leaves them leased."""
        with transaction(self.db_url) as session:
            requests = inflight.claim_submitting(session, self.worker_id, batch, self.lease_seconds)
        groups: dict[tuple[str | None, str | None], list[inflight.SubmittedRequest]] = defaultdict(list)
        for request in requests:
            groups[(request.transfertool, request.external_host)].append(request)
        settled = 0
        for (tool_name, host), group in groups.items():
            try:
                statuses = tools.tool_for(tool_name, host, self.db_url, self.vo).query(
                    [r.external_id for r in group]
                )
            except TransferToolError as exc:
                self.log.warning("look-up failed", extra={"fields": {"host": host, "error": str(exc)[:300]}})
                settled += self._give_up_looking(host, group, str(exc))
                continue
            found = inflight.held_by_tool(group, statuses)
            with transaction(self.db_url) as session:
                settled += inflight.mark_submitted(session, self.worker_id, found.held)
                settled += inflight.requeue_unsent(session, self.worker_id, found.unsent)
                settled += inflight.requeue_unsent(session, self.worker_id, found.unknown, same_job=True)
            self.log.info(
                "unanswered submissions settled",
                extra={
                    "fields": {
                        "host": host,
                        "in_a_job": len(found.held),
                        "new_job": len(found.unsent),
                        "same_job_again": len(found.unknown),
                    }
                },
            )
        return settled

    def _give_up_looking(self, host: str | None, group: list[inflight.SubmittedRequest], error: str) -> int:
        """A tool unreachable ``submitted_timeout`` seconds after the submission: the request fails
        as an attempt (SUBMISSION_FAILED), so it is retried, perhaps through another endpoint the
        operator configured, instead of waiting for the lost one for ever.  One at its retry
        limit stays SUBMITTING under its lease, to be looked up again when the lease ends."""
        overdue = inflight.overdue(group, [], self.submitted_timeout, utcnow())
        stale = [r for r in overdue if r.retry_count < self.max_retries]
        if len(stale) < len(overdue):
            self.log.warning(
                "unconfirmed submissions at their retry limit: kept until the tool answers for their job",
                extra={"fields": {"host": host, "requests": len(overdue) - len(stale)}},
            )
        if not stale:
            return 0
        reason = f"submission to {host} unconfirmed and the tool unreachable for {self.submitted_timeout} s: {error}"
        with transaction(self.db_url) as session:
            inflight.mark_unroutable(
                session,
                self.worker_id,
                {r.id: (RequestState.SUBMISSION_FAILED, reason[:4000]) for r in stale},
            )
        self.log.warning(
            "unconfirmed submissions given up after submitted_timeout",
            extra={"fields": {"host": host, "requests": len(stale), "example": stale[0].id}},
        )
        return len(stale)


DAEMON = Submitter

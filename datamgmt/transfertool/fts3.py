"""Transfers through an FTS3 server.

Which transport does what, and why:

* **Submission** goes through the official client (``fts3.rest.client.easy``: ``Context``,
  ``new_transfer``, ``new_job``, ``submit``).  It builds the job body FTS expects, handles X.509
  delegation, and is the reference implementation of the submit protocol.
* **Bulk query and bulk cancel** go straight to the REST API with ``requests``.  The client turns
  FTS's ``207 Multi-Status`` answer (some ids unknown) into a ``ClientError`` and throws the body
  away, so one purged job would hide the state of every other job in the batch; Rucio's
  transfertool reads the 207 body for the same reason.  ``DELETE /jobs/a,b`` answers 207 the same
  way.  The client also sends ``//jobs`` on the wire (a quirk real servers tolerate), and its
  ``add_alternative_source`` is broken (it calls ``list.push_back``), so extra sources are appended
  to the transfer dict directly.

Job ids are chosen before submission (:meth:`FTS3TransferTool.prepare`): each job gets a fresh
random ``sid`` and FTS's deterministic id generator, so its id is known, and recorded by the
conveyor, before the job is sent.  A job whose submission answer was lost may exist or not; the
conveyor then looks it up under that id and keeps exactly the requests the job's files carry
(``file_metadata.request_id``), so a request is never mapped to a job that lacks it and never
sent again while a job holds it.  A job FTS does not know (yet: the lost submission may still
arrive) is sent again with the same ``sid``, so the same id (:attr:`TransferSpec.job_key`).  A
job sent twice answers ``409 duplicated``; it counts only for the requests its file list shows.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from itertools import islice
from typing import Any
from urllib.parse import urlsplit

import fts3.rest.client.easy as fts3_easy
import requests
from fts3.rest.client.exceptions import ClientError, FTS3ClientException, MethodNotAllowed, Unauthorized

from datamgmt.exceptions import TransferToolError

from .base import Submitted, TransferJob, TransferSpec, TransferState, TransferStatus, TransferTool

log = logging.getLogger(__name__)

JOB_FINAL = frozenset({"FINISHED", "FINISHEDDIRTY", "FAILED", "CANCELED"})
FILE_FIELDS = (
    "file_state,source_surl,dest_surl,start_time,finish_time,reason,filesize,file_metadata,"
    "staging_start,staging_finished,archive_start_time,archive_finish_time"
)
#: How FTS writes times (a double must use exactly this, or null).
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
GROUPINGS = ("rule", "src_dest")


def _storage_element(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}"


def _chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def group_jobs(
    transfers: Iterable[TransferSpec], *, max_files: int = 100, grouping: str = "rule"
) -> list[list[TransferSpec]]:
    """Split transfers into FTS jobs.

    A multihop path is one job (hops in order) and a multi-source transfer is one job of its own
    (FTS allows one logical file per multi-replica job).  Other transfers are bulked by rule (or by
    source and destination storage) and by the job-level parameters they need, ``max_files`` at most.
    """
    if max_files < 1:
        raise ValueError("max_files must be at least 1")
    if grouping not in GROUPINGS:
        raise ValueError(f"grouping must be one of {GROUPINGS}, not {grouping!r}")
    paths: dict[str, list[TransferSpec]] = {}
    bulks: dict[tuple[Any, ...], list[TransferSpec]] = {}
    jobs: list[list[TransferSpec]] = []
    for spec in transfers:
        if spec.multihop_path is not None:
            paths.setdefault(spec.multihop_path, []).append(spec)
        elif len(spec.sources) > 1:
            jobs.append([spec])
        else:
            route = (_storage_element(spec.sources[0]), _storage_element(spec.destination))
            scope = spec.rule_id if grouping == "rule" and spec.rule_id is not None else route
            tape = (spec.bring_online, spec.copy_pin_lifetime, spec.archive_timeout)
            key = (scope, spec.priority, spec.overwrite, spec.verify_checksum, tape)
            bulks.setdefault(key, []).append(spec)
    jobs.extend(sorted(hops, key=lambda s: s.hop_index) for hops in paths.values())
    for members in bulks.values():
        jobs.extend(_chunks(members, max_files))
    return jobs


def _file_status(job: dict[str, Any], row: dict[str, Any]) -> TransferStatus | None:
    """Rucio's FTS3 state mapping for one file row of a job (None: row carries no request id)."""
    request_id = (row.get("file_metadata") or {}).get("request_id")
    if request_id is None:
        return None
    job_state, file_state = job["job_state"], row["file_state"]
    job_final = job_state in JOB_FINAL
    multi_source = job.get("job_type") == "R"
    state, reason = TransferState.SUBMITTED, row.get("reason") or None
    if file_state == "FINISHED":
        state, reason = TransferState.DONE, None
    elif (file_state == "FAILED" and (job_final or not multi_source)) or (
        file_state == "CANCELED" and job_final
    ):
        state = TransferState.FAILED
    elif file_state == "NOT_USED" and job_final:
        state = TransferState.DONE if job_state == "FINISHED" else TransferState.FAILED
        if state is TransferState.FAILED:
            reason = (
                "Unused hop in multi-hop"
                if job.get("job_type") == "H"
                else job.get("reason") or "Unused source"
            )
    return TransferStatus(
        request_id=str(request_id),
        external_id=job["job_id"],
        state=state,
        reason=reason,
        transferred_bytes=int(row.get("filesize") or 0) if state is TransferState.DONE else None,
        source_url=row.get("source_surl"),
        external_state=file_state,
        staging_started=_time(row.get("staging_start")),
        staging_finished=_time(row.get("staging_finished")),
        archive_started=_time(row.get("archive_start_time")),
        archive_finished=_time(row.get("archive_finish_time")),
    )


def _time(value: Any) -> datetime | None:
    try:
        return datetime.strptime(value, TIME_FORMAT) if isinstance(value, str) else None
    except ValueError:
        return None


_PREFERENCE = {TransferState.DONE: 0, TransferState.SUBMITTED: 1, TransferState.FAILED: 2}


def job_statuses(entry: dict[str, Any]) -> list[TransferStatus]:
    """Map one entry of a bulk ``GET /jobs/...?files=...`` answer to per-request statuses.

    A job FTS does not know (``404 Not Found``) is LOST.  Several rows of one request (the sources
    of a multi-replica job) collapse to the most favourable: DONE, else SUBMITTED, else FAILED.
    """
    http_status = entry.get("http_status", "200 Ok")
    if http_status.startswith("404"):
        return [TransferStatus(None, entry["job_id"], TransferState.LOST, reason=entry.get("http_message"))]
    if not http_status.startswith("200"):
        raise TransferToolError(
            f"FTS answered {http_status} for job {entry.get('job_id')}: {entry.get('http_message')}"
        )
    best: dict[str, TransferStatus] = {}
    for row in entry.get("files") or []:
        status = _file_status(entry, row)
        if status is None:
            continue
        known = best.get(status.request_id or "")
        if known is None or _PREFERENCE[status.state] < _PREFERENCE[known.state]:
            best[status.request_id or ""] = status
    return list(best.values())


class FTS3TransferTool(TransferTool):
    """Submit to, poll and cancel on one FTS3 endpoint (chosen by the conveyor per destination)."""

    def __init__(
        self,
        endpoint: str,
        *,
        token: str | None = None,
        cert: str | None = None,
        key: str | None = None,
        ca_path: str | None = None,
        verify: bool = True,
        timeout: float = 30.0,
        max_files_per_job: int = 100,
        grouping: str = "rule",
        query_batch: int = 50,
    ) -> None:
        """``token`` is sent as ``Authorization: Bearer``; ``cert``/``key`` (an X.509 proxy or
        certificate) as the TLS client certificate.  ``ca_path`` is the CA directory or bundle
        that verifies an ``https`` endpoint."""
        self.endpoint = endpoint.rstrip("/")
        self.token, self.cert, self.key = token, cert, key or cert
        self.ca_path, self.verify, self.timeout = ca_path, verify, timeout
        self.max_files_per_job, self.grouping, self.query_batch = max_files_per_job, grouping, query_batch
        self._context: Any = None
        self._whoami: dict[str, Any] | None = None
        self._connecting = threading.Lock()
        self._session = requests.Session()
        self._session.headers.update({"Accept": "application/json", "Content-Type": "application/json"})
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"
        if cert:
            self._session.cert = (cert, self.key)
        self._session.verify = ca_path or verify

    # -- submission (official client) -----------------------------------------------------------
    def _client(self) -> Any:
        """The client's Context, built on first use (its constructor already calls the server).

        One tool serves every thread of the process, so the Context and the identity that job
        ids derive from are published together, under a lock, only once both are known."""
        with self._connecting:
            if self._context is None:
                try:
                    context = fts3_easy.Context(
                        self.endpoint,
                        ucert=self.cert,
                        ukey=self.key,
                        verify=self.verify,
                        capath=self.ca_path,
                        fts_access_token=self.token,
                        connectTimeout=self.timeout,
                        timeout=self.timeout,
                    )
                    self._whoami = fts3_easy.whoami(context)
                except (FTS3ClientException, requests.RequestException) as exc:
                    raise TransferToolError(f"FTS endpoint {self.endpoint} unusable: {exc}") from exc
                self._context = context
            return self._context

    def _predicted_job_id(self, sid: str) -> str:
        """The id FTS's deterministic generator gives ``sid`` for our VO (``/whoami``)."""
        assert self._whoami is not None
        base = uuid.UUID(self._whoami["base_id"])
        return str(uuid.uuid5(uuid.uuid5(base, self._whoami["vos"][0]), sid))

    @staticmethod
    def build_job(specs: Sequence[TransferSpec], sid: str) -> dict[str, Any]:
        """The FTS job for one group of :func:`group_jobs`, built with the client's helpers."""
        files = []
        for spec in specs:
            checksum = spec.checksum
            transfer = fts3_easy.new_transfer(
                spec.sources[0],
                spec.destination,
                checksum=f"{checksum[0]}:{checksum[1]}" if checksum else None,
                filesize=spec.bytes,
                activity=spec.activity,
                metadata={
                    **spec.metadata,
                    "request_id": spec.request_id,
                    "rule_id": spec.rule_id,
                    "adler32": spec.adler32,
                    "md5": spec.md5,
                    "src_type": "TAPE" if spec.bring_online else "DISK",
                    "dst_type": "TAPE" if spec.archive_timeout else "DISK",
                },
            )
            # easy.add_alternative_source calls list.push_back (3.14.2 bug): extend the list ourselves.
            transfer["sources"].extend(spec.sources[1:])
            files.append(transfer)
        first = specs[0]
        multihop = first.multihop_path is not None
        return fts3_easy.new_job(
            files,
            verify_checksum=first.verify_checksum,
            overwrite=any(s.overwrite for s in specs),
            # A retry to tape may replace what an earlier attempt left on the tape buffer, never
            # a file already on tape (FTS checks which it is).
            overwrite_when_only_on_disk=bool(first.archive_timeout) and not any(s.overwrite for s in specs),
            multihop=multihop,
            priority=first.priority,
            id_generator="deterministic",
            sid=sid,
            # Tape: a tape source is staged first, a tape destination watched until archived.
            bring_online=first.bring_online,
            copy_pin_lifetime=first.copy_pin_lifetime,
            archive_timeout=first.archive_timeout,
            dst_file_report=bool(first.archive_timeout),
            metadata={"issuer": "datamgmt", "multi_sources": len(first.sources) > 1, "multihop": multihop},
        )

    def prepare(self, transfers: Iterable[TransferSpec]) -> list[TransferJob]:
        """Group into jobs, each with a ``sid`` whose deterministic job id is known now: a fresh
        one, or the ``job_key`` its transfers were sent under before (the same job id, so FTS
        answers ``409`` to whichever of the two submissions comes second)."""
        self._client()  # /whoami: the base id and VO the job ids derive from
        fresh: list[TransferSpec] = []
        again: dict[str, list[TransferSpec]] = {}
        for spec in transfers:
            if spec.job_key:
                again.setdefault(spec.job_key, []).append(spec)
            else:
                fresh.append(spec)
        groups = [
            (str(uuid.uuid4()), specs)
            for specs in group_jobs(fresh, max_files=self.max_files_per_job, grouping=self.grouping)
        ]
        groups.extend((sid, sorted(specs, key=lambda s: s.hop_index)) for sid, specs in again.items())
        jobs = []
        for sid, specs in groups:
            job_id = self._predicted_job_id(sid)
            jobs.append(TransferJob(specs, dict.fromkeys((spec.request_id for spec in specs), job_id), sid))
        return jobs

    def _submit_job(self, job: TransferJob) -> dict[str, str]:
        """POST one job; on ``409 duplicated`` keep only the requests the existing job holds."""
        job_id = job.external_ids[job.transfers[0].request_id]
        try:
            answered = fts3_easy.submit(self._client(), self.build_job(job.transfers, job.key))
        except ClientError as exc:
            if exc.reason != "409":
                raise
            held = {status.request_id for status in self.query([job_id])}
            return {spec.request_id: job_id for spec in job.transfers if spec.request_id in held}
        return dict.fromkeys((spec.request_id for spec in job.transfers), answered)

    def submit(self, jobs: Iterable[TransferJob]) -> Submitted:
        """Submit in order.  After a server or transport failure the rest wait for a later cycle:
        an endpoint that times out would otherwise hold the batch for one timeout per job.
        A job FTS answers ``400 Bad request`` is refused: it would be refused again."""
        submitted = Submitted()
        jobs = list(jobs)
        for position, job in enumerate(jobs):
            try:
                submitted.update(self._submit_job(job))
            except (ClientError, Unauthorized, MethodNotAllowed) as exc:
                log.warning(
                    "FTS refused a job of %d file(s) at %s: %s", len(job.transfers), self.endpoint, exc
                )
                if str(exc.reason).startswith("Bad request"):
                    submitted.refused.update(
                        dict.fromkeys(job.external_ids, f"FTS refused the job: {exc.reason}")
                    )
            except (FTS3ClientException, requests.RequestException, TransferToolError) as exc:
                log.warning(
                    "FTS submission to %s failed, %d job(s) left for later: %s",
                    self.endpoint,
                    len(jobs) - position,
                    exc,
                )
                break
        if jobs and not submitted and not submitted.refused:
            raise TransferToolError(f"no job could be submitted to {self.endpoint}")
        return submitted

    # -- bulk query and cancel (direct REST) ------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> list[dict[str, Any]]:
        """One REST call answering job entries; 200, 207 and 404 carry entries, anything else raises."""
        try:
            response = self._session.request(method, f"{self.endpoint}{path}", timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise TransferToolError(f"FTS {method} {path} failed: {exc}") from exc
        if response.status_code not in (200, 207, 404):
            raise TransferToolError(
                f"FTS {method} {path} answered {response.status_code}: {response.text[:300]}"
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise TransferToolError(f"FTS {method} {path} answered non-JSON: {response.text[:300]}") from exc
        return body if isinstance(body, list) else [body]

    def query(self, external_ids: Iterable[str]) -> list[TransferStatus]:
        statuses: list[TransferStatus] = []
        for batch in _chunks(list(dict.fromkeys(external_ids)), self.query_batch):
            for entry in self._request("GET", f"/jobs/{','.join(batch)}", params={"files": FILE_FIELDS}):
                statuses.extend(job_statuses(entry))
        return statuses

    def cancel(self, external_ids: Iterable[str]) -> None:
        for batch in _chunks(list(dict.fromkeys(external_ids)), self.query_batch):
            self._request("DELETE", f"/jobs/{','.join(batch)}")

    def close(self) -> None:
        self._session.close()

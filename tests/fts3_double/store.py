"""Jobs and files in memory, and FTS's state machine over them.

All transitions happen under one lock.  The rules mirror the C++ server: a file goes
``SUBMITTED → READY → ACTIVE → FINISHED | FAILED``; a staging job's files (``bring_online`` or
``copy_pin_lifetime`` > 0) start in ``STAGING`` and reach ``SUBMITTED`` once online (FINISHED
when source and destination are one URL: FTS's staging-only file, brought online in place); a job with
``archive_timeout`` > 0 keeps a copied file ``ARCHIVING`` until the tape system confirms it (or
the timeout fails it); a file brought online stays pinned on the tape system's disk for the
job's ``copy_pin_lifetime`` (:meth:`JobStore.pins`), while a recall cancelled before it ended
pins nothing (FTS aborts the bring-online); a failed file with retries left goes back to its initial state; a multi-replica job tries the next ``NOT_USED`` source after a failure; a multihop
job releases the next hop after a success and stops at the first failure; the job state is
rolled up once every logical file (``file_index``) is terminal.
"""

from __future__ import annotations

import copy
import itertools
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from werkzeug.exceptions import Conflict

from .builder import now

FILE_ACTIVE = {
    "STAGING",
    "STARTED",
    "SUBMITTED",
    "READY",
    "ACTIVE",
    "ARCHIVING",
    "QOS_TRANSITION",
    "QOS_REQUEST_SUBMITTED",
    "FORCE_START",
}
FILE_TERMINAL = {"FINISHED", "FAILED", "CANCELED"}
JOB_TERMINAL = {"FINISHED", "FAILED", "FINISHEDDIRTY", "CANCELED"}
JOB_FAILED_REASON = "One or more files failed. Please have a look at the details for more information"
CANCEL_REASON = "Job canceled by the user"


#: Steps of a file's life the workers carry out (:attr:`Next.phase`).
STAGE, STAGED, COPY, ARCHIVE, ARCHIVED = "stage", "staged", "copy", "archive", "archived"


@dataclass(frozen=True)
class Next:
    """A step the workers should carry out on a file, after ``delay`` seconds.

    ``STAGE`` starts a bring-online, ``STAGED`` ends it, ``COPY`` runs the copy, ``ARCHIVE`` asks
    the double how the tape system will answer (it turns it into an ``ARCHIVED`` step) and
    ``ARCHIVED`` ends the archive monitoring.  ``reason`` is the failure an end step records.
    """

    job_id: str
    file_id: int
    delay: float = 0.0
    phase: str = COPY
    reason: str | None = None


def is_staging(job: dict[str, Any]) -> bool:
    """FTS treats a job as a staging job when either bring-online parameter is positive."""
    return max(job["bring_online"] or -1, job["copy_pin_lifetime"] or -1) > 0


def _first_step(job_id: str, row: dict[str, Any], delay: float = 0.0) -> Next:
    return Next(job_id, row["file_id"], delay, STAGE if row["file_state"] == "STAGING" else COPY)


class JobStore:
    """The double's database: job rows, file rows, retries, and the log of every submission."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._jobs: dict[str, dict[str, Any]] = {}
        self._files: dict[str, list[dict[str, Any]]] = {}
        self._retries: dict[int, list[dict[str, Any]]] = {}
        self._file_ids = itertools.count(1)
        #: One entry per file row ever accepted, so tests can prove nothing was submitted twice.
        self.submitted: list[dict[str, Any]] = []
        #: Source URL → end of its pin: files a bring-online put online on the tape system's disk.
        self._pins: dict[str, datetime] = {}

    # -- reading ----------------------------------------------------------------------------
    def job(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return copy.deepcopy(job) if job else None

    def files(self, job_id: str) -> list[dict[str, Any]] | None:
        with self._lock:
            rows = self._files.get(job_id)
            return copy.deepcopy(rows) if rows is not None else None

    def retries(self, file_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._retries.get(file_id, []))

    def jobs(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._jobs.values()))

    def submissions(self) -> list[dict[str, Any]]:
        """Every file row ever accepted, in order, with its state now and when it ended: a
        second job for a request is a retry only if the first had failed by then."""
        with self._lock:
            rows = {(job_id, row["file_id"]): row for job_id, files in self._files.items() for row in files}
            return [
                {
                    **copy.deepcopy(entry),
                    "file_state": rows[(entry["job_id"], entry["file_id"])]["file_state"],
                    "finish_time": rows[(entry["job_id"], entry["file_id"])].get("finish_time"),
                }
                for entry in self.submitted
            ]

    def pins(self) -> dict[str, datetime]:
        """The files online now, each with the end of its pin."""
        with self._lock:
            stamp = now()
            return {url: until for url, until in self._pins.items() if until > stamp}

    # -- writing ----------------------------------------------------------------------------
    def add(self, job: dict[str, Any], files: list[dict[str, Any]]) -> list[Next]:
        """Store a built job; return the files to schedule.  A known id is FTS's 409 duplicate."""
        with self._lock:
            if job["job_id"] in self._jobs:
                raise Conflict("The sid provided by the user is duplicated")
            accepted_at = now()
            for row in files:
                row["file_id"] = next(self._file_ids)
                self.submitted.append(
                    {
                        **{
                            key: copy.deepcopy(row[key])
                            for key in ("job_id", "file_id", "source_surl", "dest_surl", "file_metadata")
                        },
                        "accepted_at": accepted_at,
                    }
                )
            self._jobs[job["job_id"]] = job
            self._files[job["job_id"]] = files
            return [
                _first_step(job["job_id"], row)
                for row in files
                if row["file_state"] in ("SUBMITTED", "STAGING")
            ]

    def claim(self, job_id: str, file_id: int, transfer_host: str) -> dict[str, Any] | None:
        """Move a SUBMITTED file to ACTIVE and return a copy (with its job under ``_job``), or None."""
        with self._lock:
            row = self._row(job_id, file_id)
            if row is None or row["file_state"] != "SUBMITTED":
                return None
            row.update(file_state="ACTIVE", start_time=now(), transfer_host=transfer_host, reason=None)
            job = self._jobs[job_id]
            if job["job_state"] in ("SUBMITTED", "READY", "STAGING"):
                job["job_state"] = "ACTIVE"
            return {**copy.deepcopy(row), "_job": copy.deepcopy(job)}

    def finish(self, job_id: str, file_id: int, *, reason: str | None, filesize: int = 0) -> list[Next]:
        """Record a copy's outcome (``reason`` None = success); return what to schedule next.

        A file canceled while it was copying stays CANCELED whatever the copy reported.
        """
        with self._lock:
            row = self._row(job_id, file_id)
            if row is None or row["file_state"] != "ACTIVE":
                return []
            job = self._jobs[job_id]
            finished_at = now()
            row["finish_time"] = finished_at
            row["tx_duration"] = (finished_at - row["start_time"]).total_seconds()
            if reason is not None:
                return self._fail(job, row, reason, finished_at)
            row["filesize"] = filesize
            if (job["archive_timeout"] or -1) > 0:  # on the tape system's buffer, not yet on tape
                row.update(file_state="ARCHIVING", archive_start_time=finished_at)
                if not {r["file_state"] for r in self._files[job_id]} & {
                    "STAGING",
                    "SUBMITTED",
                    "READY",
                    "ACTIVE",
                }:
                    job["job_state"] = "ARCHIVING"
                return [Next(job_id, file_id, phase=ARCHIVE)]
            return self._succeed(job, row)

    def begin_staging(self, job_id: str, file_id: int, staging_host: str) -> dict[str, Any] | None:
        """Start the bring-online of a STAGING file; a copy of the row, or None if it is not due."""
        with self._lock:
            row = self._row(job_id, file_id)
            if row is None or row["file_state"] != "STAGING" or row["staging_start"] is not None:
                return None
            row.update(staging_start=now(), staging_host=staging_host, reason=None)
            return copy.deepcopy(row)

    def end_staging(self, job_id: str, file_id: int, *, reason: str | None) -> list[Next]:
        """The bring-online ended: the file is online (SUBMITTED, its copy may start) or failed."""
        with self._lock:
            row = self._row(job_id, file_id)
            if row is None or row["file_state"] != "STAGING":
                return []
            finished_at = now()
            row["staging_finished"] = finished_at
            if reason is not None:
                row["finish_time"] = finished_at
                return self._fail(self._jobs[job_id], row, reason, finished_at)
            lifetime = self._jobs[job_id]["copy_pin_lifetime"]
            if lifetime and lifetime > 0:
                until = finished_at + timedelta(seconds=lifetime)
                self._pins[row["source_surl"]] = max(until, self._pins.get(row["source_surl"], until))
            if row["source_surl"] == row["dest_surl"]:  # a staging-only file: online, pinned, done
                return self._succeed(self._jobs[job_id], row)
            row["file_state"] = "SUBMITTED"
            return [Next(job_id, file_id)]

    def end_archiving(self, job_id: str, file_id: int, *, reason: str | None) -> list[Next]:
        """Archive monitoring ended: the file is on tape (FINISHED) or it timed out (a failure)."""
        with self._lock:
            row = self._row(job_id, file_id)
            if row is None or row["file_state"] != "ARCHIVING":
                return []
            finished_at = now()
            row["archive_finish_time"] = finished_at
            if reason is not None:
                return self._fail(self._jobs[job_id], row, reason, finished_at)
            return self._succeed(self._jobs[job_id], row)

    def cancel(self, job_id: str) -> tuple[dict[str, Any], list[int], bool] | None:
        """Cancel a job: (job copy, ids of files that were copying, changed), None if unknown.

        A job already terminal comes back unchanged, with ``changed`` False.
        """
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job["job_state"] in JOB_TERMINAL:
                return copy.deepcopy(job), [], False
            copying = []
            finished_at = now()
            for row in self._files[job_id]:
                if row["file_state"] in FILE_ACTIVE:
                    if row["file_state"] == "ACTIVE":
                        copying.append(row["file_id"])
                    row.update(file_state="CANCELED", reason=CANCEL_REASON, finish_time=finished_at)
            job.update(job_state="CANCELED", reason=CANCEL_REASON, job_finished=finished_at, cancel_job=True)
            return copy.deepcopy(job), copying, True

    def complete_instantly(self, job_id: str) -> None:
        """Mark every file FINISHED without copying (the double's benchmark mode)."""
        with self._lock:
            stamp = now()
            for row in self._files[job_id]:
                row.update(
                    file_state="FINISHED",
                    start_time=stamp,
                    finish_time=stamp,
                    tx_duration=0.0,
                    filesize=row["user_filesize"],
                    reason="",
                )
            self._roll_up(self._jobs[job_id])

    # -- internals --------------------------------------------------------------------------
    def _succeed(self, job: dict[str, Any], row: dict[str, Any]) -> list[Next]:
        row.update(file_state="FINISHED", reason="")
        scheduled: list[Next] = []
        if job["job_type"] == "H":
            scheduled = self._release(job, lambda r: r["file_index"] > row["file_index"])
        self._roll_up(job)
        return scheduled

    def _fail(self, job: dict[str, Any], row: dict[str, Any], reason: str, finished_at: Any) -> list[Next]:
        """Record a failed attempt (copy, staging or archiving); retry it from the start while the
        job's ``retry`` allows, else fail the file (a multi-replica job moves to its next source)."""
        job_id, file_id = job["job_id"], row["file_id"]
        row["reason"] = reason
        self._retries.setdefault(file_id, []).append(
            {
                "file_id": file_id,
                "attempt": row["retry"],
                "datetime": finished_at,
                "reason": reason,
                "transfer_host": row["transfer_host"],
                "log_file": None,
            }
        )
        scheduled: list[Next] = []
        if row["retry"] < job["retry"]:
            row.update(
                file_state="STAGING" if is_staging(job) else "SUBMITTED",
                retry=row["retry"] + 1,
                staging_start=None,
                staging_finished=None,
                archive_start_time=None,
                archive_finish_time=None,
            )
            scheduled = [_first_step(job_id, row, float(job["retry_delay"]))]
        else:
            row["file_state"] = "FAILED"
            if job["job_type"] == "R":
                scheduled = self._release(job, lambda r: r["file_index"] == row["file_index"])
        self._roll_up(job)
        return scheduled

    def _row(self, job_id: str, file_id: int) -> dict[str, Any] | None:
        return next((r for r in self._files.get(job_id, []) if r["file_id"] == file_id), None)

    def _release(self, job: dict[str, Any], candidate: Any) -> list[Next]:
        """Turn the first NOT_USED row matching ``candidate`` into SUBMITTED (STAGING for another
        replica of a staging job; the next hop of a multihop job is on the buffer already)."""
        for row in self._files[job["job_id"]]:
            if row["file_state"] == "NOT_USED" and candidate(row):
                staging = is_staging(job) and job["job_type"] == "R"
                row["file_state"] = "STAGING" if staging else "SUBMITTED"
                return [_first_step(job["job_id"], row)]
        return []

    def _roll_up(self, job: dict[str, Any]) -> None:
        rows = self._files[job["job_id"]]
        states = {r["file_state"] for r in rows}
        if states & FILE_ACTIVE:
            return
        multihop = job["job_type"] == "H"
        per_index: dict[int, set[str]] = {}
        for row in rows:
            per_index.setdefault(row["file_index"], set()).add(row["file_state"])
        finished = sum(1 for s in per_index.values() if "FINISHED" in s)
        failed = sum(1 for s in per_index.values() if "FINISHED" not in s and "FAILED" in s)
        if failed == 0 and finished == len(per_index):
            state, reason = "FINISHED", ""
        elif failed == 0 and finished == 0:
            state, reason = "CANCELED", CANCEL_REASON
        elif finished and not multihop:
            state, reason = "FINISHEDDIRTY", JOB_FAILED_REASON
        else:
            state, reason = "FAILED", JOB_FAILED_REASON
        job.update(job_state=state, reason=reason, job_finished=now())

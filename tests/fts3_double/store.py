"""Jobs and files in memory, and FTS's state machine over them.

All transitions happen under one lock.  The rules mirror the C++ server: a file goes
``SUBMITTED → READY → ACTIVE → FINISHED | FAILED``; a failed file with retries left goes back to
``SUBMITTED``; a multi-replica job tries the next ``NOT_USED`` source after a failure; a multihop
job releases the next hop after a success and stops at the first failure; the job state is
rolled up once every logical file (``file_index``) is terminal.
"""

from __future__ import annotations

import copy
import itertools
import threading
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Next:
    """A file the workers should pick up, after ``delay`` seconds."""

    job_id: str
    file_id: int
    delay: float = 0.0


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

    # -- writing ----------------------------------------------------------------------------
    def add(self, job: dict[str, Any], files: list[dict[str, Any]]) -> list[Next]:
        """Store a built job; return the files to schedule.  A known id is FTS's 409 duplicate."""
        with self._lock:
            if job["job_id"] in self._jobs:
                raise Conflict("The sid provided by the user is duplicated")
            for row in files:
                row["file_id"] = next(self._file_ids)
                self.submitted.append(
                    {
                        key: copy.deepcopy(row[key])
                        for key in ("job_id", "file_id", "source_surl", "dest_surl", "file_metadata")
                    }
                )
            self._jobs[job["job_id"]] = job
            self._files[job["job_id"]] = files
            return [Next(job["job_id"], row["file_id"]) for row in files if row["file_state"] == "SUBMITTED"]

    def claim(self, job_id: str, file_id: int, transfer_host: str) -> dict[str, Any] | None:
        """Move a SUBMITTED file to ACTIVE and return a copy (with its job under ``_job``), or None."""
        with self._lock:
            row = self._row(job_id, file_id)
            if row is None or row["file_state"] != "SUBMITTED":
                return None
            row.update(file_state="ACTIVE", start_time=now(), transfer_host=transfer_host, reason=None)
            job = self._jobs[job_id]
            if job["job_state"] in ("SUBMITTED", "READY"):
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
            scheduled: list[Next] = []
            if reason is None:
                row.update(file_state="FINISHED", filesize=filesize, reason="")
                if job["job_type"] == "H":
                    scheduled = self._release(job_id, lambda r: r["file_index"] > row["file_index"])
            else:
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
                if row["retry"] < job["retry"]:
                    row.update(file_state="SUBMITTED", retry=row["retry"] + 1)
                    scheduled = [Next(job_id, file_id, float(job["retry_delay"]))]
                else:
                    row["file_state"] = "FAILED"
                    if job["job_type"] == "R":
                        scheduled = self._release(job_id, lambda r: r["file_index"] == row["file_index"])
            self._roll_up(job)
            return scheduled

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
    def _row(self, job_id: str, file_id: int) -> dict[str, Any] | None:
        return next((r for r in self._files.get(job_id, []) if r["file_id"] == file_id), None)

    def _release(self, job_id: str, candidate: Any) -> list[Next]:
        """Turn the first NOT_USED row matching ``candidate`` into SUBMITTED."""
        for row in self._files[job_id]:
            if row["file_state"] == "NOT_USED" and candidate(row):
                row["file_state"] = "SUBMITTED"
                return [Next(job_id, row["file_id"])]
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

"""The transfer tool contract shared by the FTS3 client and the embedded copier.

A transfer tool moves bytes and reports outcomes; it never reads or writes the catalogue.
The conveyor hands it plain :class:`TransferSpec` descriptions, keeps the external ids in the
request rows, and later asks for :class:`TransferStatus` reports by those ids.  Everything is
bulk: one call submits, queries or cancels many transfers, because the conveyor works in
batches and a round trip per file does not scale.

Submission is two steps so that no request can be in a job the catalogue does not know of:
:meth:`TransferTool.prepare` groups the transfers into jobs (:class:`TransferJob`) and chooses
their external ids *before* anything is sent; the conveyor records those ids (and the jobs' keys); only then does :meth:`TransferTool.submit`
send the jobs.  When a submission's answer is lost (a timeout after the server created the job),
the recorded id is where the conveyor looks for the request; when the tool does not know that
job (yet: the first submission may still be on its way), the request is sent again under the
same key (:attr:`TransferSpec.job_key`), never under a new one.
"""

from __future__ import annotations

import abc
import enum
import errno
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

#: The reason a transfer canceled before it finished fails with.
CANCELED_REASON = f"TRANSFER [{errno.ECANCELED}] Transfer canceled"
#: Checksum verification modes, FTS's vocabulary: which ends are compared with the expected value.
VERIFY_MODES = ("both", "source", "target", "none")


class TransferState(enum.StrEnum):
    """Request states a transfer tool can report (the conveyor's vocabulary, not the tool's)."""

    SUBMITTED = "SUBMITTED"  # accepted by the tool, not finished yet (staging, queued, copying, archiving)
    DONE = "DONE"  # copied and verified
    FAILED = "FAILED"  # finished without a verified copy (includes cancellation)
    LOST = "LOST"  # the tool does not know the external id (restart, purge): retried as an attempt


@dataclass(frozen=True)
class TransferSpec:
    """One file to copy, as the conveyor decided it.

    ``sources`` are full URLs in preference order; more than one lets the tool fall back to the
    next replica.  Transfers that share ``multihop_path`` are consecutive hops of one path and
    are ordered by ``hop_index`` (hop *n*'s destination is hop *n+1*'s source).
    """

    request_id: str
    sources: Sequence[str]
    destination: str
    bytes: int | None = None
    adler32: str | None = None
    md5: str | None = None
    activity: str = "default"
    priority: int = 3
    rule_id: str | None = None
    overwrite: bool = True
    #: FTS's verify_checksum: Rucio uses "both", or "target"/"source" when one end has no adler32.
    verify_checksum: str = "both"
    multihop_path: str | None = None
    hop_index: int = 0
    #: A tape source: seconds the tool may take to bring it online, and to keep it pinned there
    #: for the copy (FTS's ``bring_online`` and ``copy_pin_lifetime``); None for a disk source.
    bring_online: int | None = None
    copy_pin_lifetime: int | None = None
    #: A tape destination: seconds the tool waits for the file to be on tape, not just on the tape
    #: system's disk buffer, before the transfer counts as done (FTS's ``archive_timeout``).
    archive_timeout: int | None = None
    #: The RSE protocol prefix of each source (in ``sources`` order) and of the destination: a
    #: copier that reaches ``file://`` ends itself confines them there (None: no prefix known).
    source_roots: Sequence[str | None] = ()
    destination_root: str | None = None
    #: Extra values echoed back by FTS in file_metadata (scope, name, RSE ids ...).
    metadata: Mapping[str, object] = field(default_factory=dict)
    #: The key (:attr:`TransferJob.key`) of a job this request was sent in without an answer and
    #: that the tool did not hold when asked: the tool must send it again in a job with this key,
    #: so that whichever copy of the job arrives second is refused as a duplicate (FTS's 409)
    #: instead of copying the file twice.
    job_key: str | None = None

    def __post_init__(self) -> None:
        if not self.sources:
            raise ValueError(f"transfer {self.request_id} has no source")
        if self.verify_checksum not in VERIFY_MODES:
            raise ValueError(f"verify_checksum must be one of {VERIFY_MODES}, not {self.verify_checksum!r}")

    @property
    def checksum(self) -> tuple[str, str] | None:
        """The (algorithm, value) pair to verify with: adler32 when known, else md5."""
        if self.adler32:
            return "ADLER32", self.adler32.lower().zfill(8)
        if self.md5:
            return "MD5", self.md5.lower()
        return None


@dataclass(frozen=True)
class TransferStatus:
    """What the tool knows about one transfer.

    ``request_id`` is ``None`` only for LOST reports: the tool no longer knows which requests
    the external id carried, so the conveyor marks every request holding ``external_id``.
    """

    request_id: str | None
    external_id: str
    state: TransferState
    reason: str | None = None
    transferred_bytes: int | None = None
    #: The source the copy used (matters when several replicas were offered).
    source_url: str | None = None
    #: The tool's own state name (e.g. FTS's ``ACTIVE``, or the tape phases ``STAGING`` and
    #: ``ARCHIVING`` of a SUBMITTED transfer), for logs, operators and the request's phase.
    external_state: str | None = None
    #: When the tool began and finished bringing a tape source online (naive UTC), if it staged
    #: one: the copy's own time starts at the end, not at submission.
    staging_started: datetime | None = None
    staging_finished: datetime | None = None
    #: When the tool began watching a copy to tape, and when it saw the file on tape (FTS's
    #: ``archive_start_time`` and ``archive_finish_time``).
    archive_started: datetime | None = None
    archive_finished: datetime | None = None


@dataclass(frozen=True)
class TransferJob:
    """Transfers submitted together, with the external id each will have once submitted."""

    transfers: Sequence[TransferSpec]
    #: request id → external id, chosen by :meth:`TransferTool.prepare` before submission.
    external_ids: Mapping[str, str]
    #: The tool's own handle of the job, from which its external id derives (FTS: the ``sid``).
    key: str = ""


class Submitted(dict[str, str]):
    """What :meth:`TransferTool.submit` answers: ``{request_id: external_id}`` of the transfers the
    tool is known to hold, and in :attr:`refused` ``{request_id: reason}`` of those it answered
    it will never take as they are (a malformed job): failed attempts, not something to retry
    unchanged forever."""

    def __init__(self, accepted: Mapping[str, str] = (), refused: Mapping[str, str] | None = None) -> None:
        super().__init__(accepted)
        self.refused: dict[str, str] = dict(refused or {})


@dataclass(frozen=True)
class Pin:
    """A file a STAGEIN brought online: its URL, and the external id of the transfer that staged it."""

    url: str | None
    external_id: str | None


class TransferTool(abc.ABC):
    """A bulk transfer service: prepare and submit jobs, query and cancel by external id."""

    @abc.abstractmethod
    def prepare(self, transfers: Iterable[TransferSpec]) -> list[TransferJob]:
        """Group ``transfers`` into jobs and choose their external ids; nothing is submitted.

        Transfers that carry a :attr:`~TransferSpec.job_key` go into a job with that key (and so
        the external id it had), with no transfer of another key.

        Raises :class:`~datamgmt.exceptions.TransferToolError` when the tool cannot be reached
        to choose them.
        """

    @abc.abstractmethod
    def submit(self, jobs: Iterable[TransferJob]) -> Submitted:
        """Submit prepared ``jobs``; the answer maps the transfers the tool is known to hold to
        their external ids (an id may differ from the prepared one if the tool chose another)
        and lists those it refused.

        A request in neither may or may not have reached the tool (its answer was lost): the
        caller must look for it under its prepared id before submitting it again.  Raises
        :class:`~datamgmt.exceptions.TransferToolError` when nothing could be submitted.
        """

    @abc.abstractmethod
    def query(self, external_ids: Iterable[str]) -> list[TransferStatus]:
        """Bulk status of the transfers behind ``external_ids`` (unknown ids come back LOST)."""

    @abc.abstractmethod
    def cancel(self, external_ids: Iterable[str]) -> None:
        """Bulk cancel; ids that are unknown or already finished are ignored."""

    def release(self, pins: Iterable[Pin]) -> None:
        """Give back pins nobody needs any more (their staging rule is gone).  A recall still
        running is cancelled, which aborts it; FTS has no call that unpins a finished recall, so
        such a pin lasts until its ``copy_pin_lifetime`` ends.  The tape copy is never touched."""
        self.cancel([pin.external_id for pin in pins if pin.external_id])

    @abc.abstractmethod
    def close(self) -> None:
        """Release the threads or connections the tool holds."""

"""Turn a ``POST /jobs`` body into job and file rows, following FTS's JobBuilder rules.

Validation failures raise :class:`BadRequest` with FTS's wording, so clients see the same 400
messages as from a real server.  Rows are plain dicts keyed by FTS's column names, because the
server serializes rows by attribute name and clients read them by those names.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from werkzeug.exceptions import BadRequest, MethodNotAllowed

BASE_ID = uuid.UUID("01874efb-4735-4595-bc9c-591aef8240c9")
VERIFY_LETTERS = {"both": "b", "source": "s", "target": "t", "none": "n"}
OVERWRITE_FLAGS = {
    "overwrite": "Y",
    "overwrite_on_retry": "R",
    "overwrite_hop": "M",
    "overwrite_when_only_on_disk": "D",
}

JOB_FIELDS = [
    "job_id",
    "job_state",
    "job_type",
    "source_se",
    "dest_se",
    "user_dn",
    "cred_id",
    "vo_name",
    "reason",
    "submit_time",
    "job_finished",
    "priority",
    "max_time_in_queue",
    "destination_spacetoken",
    "source_spacetoken",
    "internal_job_params",
    "dst_file_report",
    "overwrite_flag",
    "copy_pin_lifetime",
    "verify_checksum",
    "bring_online",
    "archive_timeout",
    "target_qos",
    "job_metadata",
    "retry",
    "retry_delay",
    "cancel_job",
    "submit_host",
    "os_project_id",
]
FILE_FIELDS = [
    "file_id",
    "file_index",
    "job_id",
    "file_state",
    "source_surl",
    "dest_surl",
    "source_se",
    "dest_se",
    "vo_name",
    "activity",
    "priority",
    "reason",
    "recoverable",
    "filesize",
    "user_filesize",
    "checksum",
    "start_time",
    "finish_time",
    "staging_start",
    "staging_finished",
    "archive_start_time",
    "archive_finish_time",
    "tx_duration",
    "throughput",
    "retry",
    "file_metadata",
    "staging_metadata",
    "archive_metadata",
    "selection_strategy",
    "transfer_host",
    "staging_host",
    "pid",
    "log_file",
    "log_debug",
    "internal_file_params",
    "bringonline_token",
    "scitag",
    "hashed_id",
    "dest_surl_uuid",
    "src_token_id",
    "dst_token_id",
    "file_state_initial",
]


def now() -> datetime:
    """Naive UTC, second resolution: what FTS stores and serializes."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def deterministic_job_id(vo_name: str, sid: str) -> str:
    """FTS's ``id_generator=deterministic`` id, which clients can predict from /whoami."""
    return str(uuid.uuid5(uuid.uuid5(BASE_ID, vo_name), sid))


def storage_element(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}"


def _validate_url(url: Any, allow_local_files: bool) -> str:
    if not isinstance(url, str):
        raise BadRequest(f"Invalid value within the request: {url!r} is not a URL")
    parts = urlsplit(url)
    if parts.scheme == "file":
        if not allow_local_files:
            raise BadRequest("Can not transfer local files")
        if not parts.path:
            raise BadRequest(f"Invalid value within the request: missing path in {url}")
        return url
    if not parts.scheme or not parts.hostname or not parts.path:
        raise BadRequest(f"Invalid value within the request: {url} (missing scheme, host or path)")
    return url


def _url_list(entry: dict[str, Any], key: str, allow_local_files: bool) -> list[str]:
    value = entry.get(key)
    if value is None:
        raise BadRequest(f"Missing parameter: {key}")
    urls = [value] if isinstance(value, str) else value
    if not isinstance(urls, list) or not urls:
        raise BadRequest(f"Invalid value within the request: {key} must be a non-empty list")
    return [_validate_url(u, allow_local_files) for u in urls]


def _verify_letter(params: dict[str, Any], any_checksum: bool) -> str:
    value = params.get("verify_checksum")
    if value is None or value is False:
        return "t" if any_checksum and value is False else "n"
    if value is True:
        return "b"
    if isinstance(value, str) and value.lower() in VERIFY_LETTERS:
        return VERIFY_LETTERS[value.lower()]
    raise BadRequest(f"Invalid value within the request: verify_checksum {value!r}")


def _int_param(params: dict[str, Any], key: str, default: int) -> int:
    value = params.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadRequest(f"Invalid value within the request: {key} {value!r}")
    try:
        return int(value)
    except ValueError as exc:
        raise BadRequest(f"Invalid value within the request: {key} {value!r}") from exc


def _overwrite_flag(params: dict[str, Any]) -> str | None:
    chosen = [key for key in OVERWRITE_FLAGS if params.get(key)]
    if len(chosen) > 1 and set(chosen) != {"overwrite_hop", "overwrite_when_only_on_disk"}:
        raise BadRequest("Invalid value within the request: only one overwrite flag may be set")
    return OVERWRITE_FLAGS[chosen[0]] if chosen else None


def _file_metadata(entry: dict[str, Any]) -> Any:
    metadata = entry.get("metadata")
    return {"label": metadata} if isinstance(metadata, str) else metadata


def build_job(
    body: Any, credentials: dict[str, Any], *, allow_local_files: bool, default_retry: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Validate a submission and return (job row, file rows); ``file_id`` is left for the store."""
    if not isinstance(body, dict):
        raise BadRequest("Badly formatted JSON request (expected an object)")
    if body.get("delete"):
        raise MethodNotAllowed(description="Deletion jobs are no longer supported by FTS")
    entries = body.get("files")
    if not entries or not isinstance(entries, list):
        raise BadRequest("No transfers operations specified")
    params = body.get("params") or {}
    if not isinstance(params, dict):
        raise BadRequest("Invalid value within the request: params must be an object")

    multihop = bool(params.get("multihop"))
    multi_sources = any(isinstance(e, dict) and len(e.get("sources") or []) > 1 for e in entries)
    if multi_sources and (multihop or len(entries) > 1):
        raise BadRequest(
            "Invalid value within the request: multiple replicas need exactly one file, no multihop"
        )
    if multihop and params.get("reuse"):
        raise BadRequest("Invalid value within the request: reuse can not be used with multihop")
    job_type = "H" if multihop else "R" if multi_sources else "Y" if params.get("reuse") else "N"

    bring_online = _int_param(params, "bring_online", -1)
    copy_pin_lifetime = _int_param(params, "copy_pin_lifetime", -1)
    priority = min(5, max(1, _int_param(params, "priority", 3)))
    retry = _int_param(params, "retry", 0)
    submitted_at = now()

    files: list[dict[str, Any]] = []
    any_checksum = False
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise BadRequest("Invalid value within the request: each file must be an object")
        sources = _url_list(entry, "sources", allow_local_files)
        destinations = _url_list(entry, "destinations", allow_local_files)
        checksum = entry.get("checksum") or "ADLER32"
        if not isinstance(checksum, str):
            raise BadRequest(f"Invalid value within the request: checksum {checksum!r}")
        any_checksum = any_checksum or ":" in checksum
        filesize = entry.get("filesize") or 0
        if isinstance(filesize, bool) or not isinstance(filesize, int | float) or filesize < 0:
            raise BadRequest(f"Invalid value within the request: filesize {filesize!r}")
        for source in sources:
            for destination in destinations:
                row = dict.fromkeys(FILE_FIELDS)
                row.update(
                    file_index=index,
                    file_state="SUBMITTED",
                    source_surl=source,
                    dest_surl=destination,
                    source_se=storage_element(source),
                    dest_se=storage_element(destination),
                    vo_name=credentials["vos"][0],
                    activity=entry.get("activity") or "default",
                    priority=priority,
                    filesize=0,
                    user_filesize=filesize,
                    checksum=checksum,
                    retry=0,
                    file_metadata=_file_metadata(entry),
                    staging_metadata=entry.get("staging_metadata"),
                    archive_metadata=entry.get("archive_metadata"),
                    scitag=entry.get("scitag"),
                    selection_strategy=entry.get("selection_strategy") or "auto",
                )
                files.append(row)
    if multihop or multi_sources:
        for row in files:
            row["file_state"] = "NOT_USED"
        files[0]["file_state"] = "SUBMITTED"
    if bring_online > 0 or copy_pin_lifetime > 0:  # a staging job: its files first come online
        for row in files:
            if row["file_state"] == "SUBMITTED":
                row["file_state"] = "STAGING"
    for row in files:
        row["file_state_initial"] = row["file_state"]

    vo_name = credentials["vos"][0]
    if params.get("id_generator") == "deterministic":
        if not params.get("sid"):
            raise BadRequest("Missing parameter: sid")
        job_id = deterministic_job_id(vo_name, str(params["sid"]))
    else:
        job_id = str(uuid.uuid1())
    source_ses = {row["source_se"] for row in files}
    dest_ses = {row["dest_se"] for row in files}
    job_metadata = params.get("job_metadata")
    if isinstance(job_metadata, dict) or job_metadata is None:
        job_metadata = dict(job_metadata or {}, auth_method=credentials["method"])

    job = dict.fromkeys(JOB_FIELDS)
    job.update(
        job_id=job_id,
        job_state="STAGING" if bring_online > 0 or copy_pin_lifetime > 0 else "SUBMITTED",
        job_type=job_type,
        source_se=source_ses.pop() if len(source_ses) == 1 else None,
        dest_se=dest_ses.pop() if len(dest_ses) == 1 else None,
        user_dn=credentials["user_dn"],
        cred_id=credentials["delegation_id"],
        vo_name=vo_name,
        submit_time=submitted_at,
        priority=priority,
        max_time_in_queue=params.get("max_time_in_queue"),
        destination_spacetoken=params.get("destination_spacetoken") or "",
        source_spacetoken=params.get("source_spacetoken") or "",
        dst_file_report=bool(params.get("dst_file_report")),
        overwrite_flag=_overwrite_flag(params),
        copy_pin_lifetime=copy_pin_lifetime,
        verify_checksum=_verify_letter(params, any_checksum),
        bring_online=bring_online,
        archive_timeout=_int_param(params, "archive_timeout", -1),
        target_qos=params.get("target_qos"),
        job_metadata=job_metadata,
        retry=0 if multihop or multi_sources else default_retry if retry == 0 else max(retry, 0),
        retry_delay=_int_param(params, "retry_delay", 0),
        cancel_job=False,
        submit_host="127.0.0.1",
    )
    for row in files:
        row["job_id"] = job_id
    return job, files

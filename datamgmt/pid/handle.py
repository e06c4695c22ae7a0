"""Handle.net PIDs through the Handle Server REST JSON API (``/api/handles/<prefix>/<suffix>``).

Index layout of the records we write: 1 ``URL`` (landing page), 2 ``CHECKSUM`` (of the
share's content), 3 ``STATUS`` (only once withdrawn), 100 ``HS_ADMIN``.  Authentication
is HTTP Basic with the username ``<index>:<admin handle>`` percent-encoded, as pyhandle does.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any
from urllib.parse import quote

from datamgmt.exceptions import PIDServiceError
from datamgmt.pid.base import DEFAULT_TIMEOUT, Resolution, new_session, raise_for_status
from datamgmt.publishing.records import ShareRecord

URL_INDEX, CHECKSUM_INDEX, STATUS_INDEX, ADMIN_INDEX = 1, 2, 3, 100
WITHDRAWN = "withdrawn"


def content_checksum(record: ShareRecord) -> str:
    """The CHECKSUM value: the file's adler32 for one file, else a sha256 of the sorted file manifest."""
    if len(record.files) == 1:
        return f"adler32:{record.files[0].adler32}"
    manifest = "".join(
        f"{entry.name}\t{entry.bytes}\t{entry.adler32}\n"
        for entry in sorted(record.files, key=lambda e: e.name)
    )
    return "sha256:" + hashlib.sha256(manifest.encode("utf-8")).hexdigest()


def _string_value(index: int, kind: str, value: str) -> dict[str, Any]:
    return {"index": index, "type": kind, "data": {"format": "string", "value": value}}


class HandleClient:
    """A :class:`~datamgmt.pid.base.PIDClient` for one prefix of a Handle server."""

    service = "Handle server"

    def __init__(
        self,
        endpoint: str,
        prefix: str,
        username: str,
        password: str,
        verify: bool | str = True,
        admin_handle: str | None = None,
        admin_index: int = 200,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.prefix = prefix
        self.timeout = timeout
        self._session = new_session(quote(username, safe=""), password, verify)
        self._admin = {
            "index": ADMIN_INDEX,
            "type": "HS_ADMIN",
            "data": {
                "format": "admin",
                "value": {
                    "handle": admin_handle or f"0.NA/{prefix}",
                    "index": admin_index,
                    "permissions": "011111110011",
                },
            },
        }

    def _url(self, pid: str) -> str:
        prefix, slash, suffix = pid.partition("/")
        if not (prefix and slash and suffix):
            raise PIDServiceError(f"{pid!r} is not a handle (prefix/suffix)")
        return f"{self.endpoint}/api/handles/{prefix}/{quote(suffix, safe='')}"

    def _values(self, landing_url: str, record: ShareRecord) -> list[dict[str, Any]]:
        return [
            _string_value(URL_INDEX, "URL", landing_url),
            _string_value(CHECKSUM_INDEX, "CHECKSUM", content_checksum(record)),
            self._admin,
        ]

    def _put(self, pid: str, values: list[dict[str, Any]], params: dict[str, Any]) -> None:
        response = self._session.put(
            self._url(pid), json={"values": values}, params=params, timeout=self.timeout
        )
        raise_for_status(response, pid, self.service)

    def mint(self, suffix: str | None, landing_url: str, record: ShareRecord) -> str:
        """Create the handle; an existing one is never overwritten (PIDAlreadyExists)."""
        pid = f"{self.prefix}/{suffix or uuid.uuid4().hex}"
        self._put(pid, self._values(landing_url, record), {"overwrite": "false"})
        return pid

    def update(self, pid: str, landing_url: str, record: ShareRecord) -> None:
        """Replace the whole record, which also lifts a withdrawal (a re-publication)."""
        self._put(pid, self._values(landing_url, record), {"overwrite": "true"})

    def withdraw(self, pid: str) -> None:
        """Add the STATUS value only; the URL keeps pointing at the (tombstone) landing page."""
        self._put(pid, [_string_value(STATUS_INDEX, "STATUS", WITHDRAWN)], {"index": STATUS_INDEX})

    def resolve(self, pid: str) -> Resolution:
        response = self._session.get(self._url(pid), params={"auth": "true"}, timeout=self.timeout)
        raise_for_status(response, pid, self.service)
        values = {value["type"]: value["data"]["value"] for value in response.json().get("values", [])}
        return Resolution(
            pid, values.get("URL"), WITHDRAWN if values.get("STATUS") == WITHDRAWN else "active"
        )

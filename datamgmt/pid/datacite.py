"""DataCite DOIs through the DataCite REST API (JSON:API, ``/dois``).

Minting creates a draft first (reserving the DOI, server-chosen suffix if none is
given), then publishes it with the full metadata; a failed publication deletes the
draft so no half-made DOI is left.  Withdrawing hides a findable DOI (it stays
resolvable, as DOIs must) and deletes a draft, the only state that can be deleted.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

from datamgmt.exceptions import DatamgmtError, PIDAlreadyExists
from datamgmt.pid.base import DEFAULT_TIMEOUT, Resolution, new_session, raise_for_status
from datamgmt.publishing import datacite
from datamgmt.publishing.records import ShareRecord

MEDIA_TYPE = "application/vnd.api+json"


def _taken(response: requests.Response) -> bool:
    """DataCite answers 422 with an error on ``doi`` when the DOI exists."""
    if response.status_code != 422:
        return False
    try:
        errors = response.json().get("errors", [])
    except ValueError:
        return False
    return any(error.get("source") == "doi" and "taken" in error.get("title", "") for error in errors)


class DataCiteClient:
    """A :class:`~datamgmt.pid.base.PIDClient` for one DataCite repository account and prefix."""

    service = "DataCite"

    def __init__(
        self,
        endpoint: str,
        prefix: str,
        username: str,
        password: str,
        verify: bool | str = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.prefix = prefix
        self.timeout = timeout
        self._session = new_session(username, password, verify)
        self._session.headers.update({"Content-Type": MEDIA_TYPE, "Accept": MEDIA_TYPE})

    def _doi_url(self, doi: str) -> str:
        return f"{self.endpoint}/dois/{quote(doi, safe='/')}"

    def _send(
        self, method: str, url: str, doi: str, attributes: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        body = None if attributes is None else {"data": {"type": "dois", "attributes": attributes}}
        response = self._session.request(method, url, json=body, timeout=self.timeout)
        if _taken(response):
            raise PIDAlreadyExists(f"{self.service}: the DOI {doi} is already taken")
        raise_for_status(response, doi, self.service)
        return response.json() if response.content else {}

    def mint(self, suffix: str | None, landing_url: str, record: ShareRecord) -> str:
        reserve: dict[str, Any] = {"url": landing_url}
        if suffix is None:
            reserve["prefix"] = self.prefix
        else:
            reserve["doi"] = f"{self.prefix}/{suffix}"
        draft = self._send("POST", f"{self.endpoint}/dois", reserve.get("doi", self.prefix), reserve)
        doi = draft["data"]["id"]
        try:
            self._send(
                "PUT",
                self._doi_url(doi),
                doi,
                {**datacite.attributes(record, landing_url, doi), "event": "publish"},
            )
        except DatamgmtError:
            self._send("DELETE", self._doi_url(doi), doi)
            raise
        return doi

    def update(self, pid: str, landing_url: str, record: ShareRecord) -> None:
        """Send new metadata and URL; the state (findable or hidden) is left as it is."""
        self._send("PUT", self._doi_url(pid), pid, datacite.attributes(record, landing_url, pid))

    def withdraw(self, pid: str) -> None:
        state = self.resolve(pid).state
        if state == "draft":
            self._send("DELETE", self._doi_url(pid), pid)
        elif state == "findable":
            self._send("PUT", self._doi_url(pid), pid, {"event": "hide"})

    def resolve(self, pid: str) -> Resolution:
        attributes = self._send("GET", self._doi_url(pid), pid)["data"]["attributes"]
        return Resolution(pid, attributes.get("url"), attributes["state"])

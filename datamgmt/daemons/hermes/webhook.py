"""hermes's ``webhook`` service: each message POSTed as JSON to ``[hermes] webhook_url``, signed.

The request body is the message's JSON (:func:`~datamgmt.daemons.hermes.base.body`) and
carries these headers:

* ``X-Datamgmt-Signature: sha256=<hex>``: HMAC-SHA256 of the exact body bytes under
  ``[hermes] webhook_secret``, so the receiver can tell the POST came from us and was not
  altered (compare in constant time);
* ``X-Datamgmt-Event``: the event type; ``X-Datamgmt-Message-Id``: the message id, the same on
  every retry, for the receiver to deduplicate on (delivery is at least once).

A 2xx answer is delivery.  408, 429 and 5xx answers and network errors mean the receiver is
unwell (:class:`~datamgmt.daemons.hermes.base.Unavailable`: the batch stops, hermes backs
off); any other answer, redirects included (they are not followed, so the body and its
signature never go to a host nobody configured), is a
:class:`~datamgmt.daemons.hermes.base.Refused` of that one message.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

import requests

from datamgmt.config import Config
from datamgmt.daemons.hermes.base import Outgoing, Refused, Sink, Unavailable, body
from datamgmt.exceptions import ConfigurationError

SIGNATURE_HEADER = "X-Datamgmt-Signature"
#: Answers that say the receiver, not the message, is the problem.
TRANSIENT = frozenset({408, 429})


def signature(secret: bytes, data: bytes) -> str:
    """The ``X-Datamgmt-Signature`` value of ``data``."""
    return "sha256=" + hmac.new(secret, data, hashlib.sha256).hexdigest()


class WebhookSink(Sink):
    service = "webhook"

    def __init__(self, url: str, secret: str, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                f"[hermes] webhook_url must be an http:// or https:// URL, not {url[:80]!r}"
            )
        if not secret:
            raise ConfigurationError("[hermes] webhook_secret is not set: webhook messages are always signed")
        self.url = url
        self.secret = secret.encode()
        self.timeout = timeout
        self._http: requests.Session | None = None

    @classmethod
    def from_config(cls, config: Config) -> WebhookSink | None:
        """The service ``[hermes] webhook_url`` configures, or None when it is empty."""
        url = config.get("hermes", "webhook_url").strip()
        if not url:
            return None
        return cls(url, config.get("hermes", "webhook_secret"), config.get_float("hermes", "timeout"))

    def close(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            http.close()

    def send(self, row: Outgoing) -> None:
        if self._http is None:
            self._http = requests.Session()
        data = body(row)
        headers = {
            "Content-Type": "application/json",
            "X-Datamgmt-Event": row.event_type,
            "X-Datamgmt-Message-Id": row.key,
            SIGNATURE_HEADER: signature(self.secret, data),
        }
        try:
            response = self._http.post(
                self.url, data=data, headers=headers, timeout=self.timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            raise Unavailable(f"{type(exc).__name__}: {exc}") from exc
        if 200 <= response.status_code < 300:
            return
        reason = f"HTTP {response.status_code} from {self.url}: {response.text[:200]!r}"
        if response.status_code in TRANSIENT or response.status_code >= 500:
            raise Unavailable(reason)
        raise Refused(reason, url=self.url)

"""Stateless, signed OAI-PMH resumption tokens.

A token carries the whole harvest state (verb, format, selection, keyset position,
cursor, list size, expiry), so any server process can answer it and re-issuing it
returns the same page [3.5.1].  An HMAC over the content stops harvesters from
forging positions or selections; tampered or expired tokens are badResumptionToken.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from datamgmt.publishing.oai import OAIError

_SIGNATURE_BYTES = 16


@dataclass(frozen=True, slots=True)
class ResumptionState:
    """Where an incomplete list stopped.

    ``after`` is the keyset position: ``[datestamp ISO, share_id]`` for records and
    headers, ``[setSpec]`` for ListSets.  ``cursor`` counts the elements already sent.
    """

    verb: str
    metadata_prefix: str | None
    from_: datetime | None
    until: datetime | None
    set_spec: str | None
    after: tuple[str, ...]
    cursor: int
    complete_list_size: int
    expires: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class TokenCodec:
    """Encodes and verifies tokens with one server secret (shared by all server processes)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the resumption token secret must be at least 16 bytes")
        self._secret = secret

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._secret, payload.encode("ascii"), hashlib.sha256).digest()
        return _b64(digest[:_SIGNATURE_BYTES])

    def encode(self, state: ResumptionState) -> str:
        body = [
            state.verb,
            state.metadata_prefix,
            _iso(state.from_),
            _iso(state.until),
            state.set_spec,
            list(state.after),
            state.cursor,
            state.complete_list_size,
            int(state.expires.timestamp()),
        ]
        payload = _b64(json.dumps(body, separators=(",", ":")).encode("utf-8"))
        return f"{payload}.{self._sign(payload)}"

    def decode(self, token: str, verb: str, now: datetime) -> ResumptionState:
        """The state of a token issued for ``verb``; badResumptionToken if forged, foreign or expired."""
        payload, _, signature = token.partition(".")
        if not payload.isascii() or not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            raise OAIError("badResumptionToken", "The resumption token is not valid")
        try:
            body = json.loads(_unb64(payload))
            state = ResumptionState(
                verb=body[0],
                metadata_prefix=body[1],
                from_=_from_iso(body[2]),
                until=_from_iso(body[3]),
                set_spec=body[4],
                after=tuple(body[5]),
                cursor=int(body[6]),
                complete_list_size=int(body[7]),
                expires=datetime.fromtimestamp(body[8], UTC),
            )
        except (ValueError, TypeError, IndexError, KeyError, binascii.Error) as exc:
            raise OAIError("badResumptionToken", "The resumption token is not valid") from exc
        if state.verb != verb:
            raise OAIError("badResumptionToken", f"The resumption token was issued for {state.verb}")
        if state.expires <= now:
            raise OAIError("badResumptionToken", "The resumption token has expired")
        return state

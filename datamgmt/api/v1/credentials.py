"""``/credentials/signurl``: a pre-signed URL to one object of an S3 RSE, as Rucio's API gives one.

Rucio's query parameters: ``rse``, ``url``, ``svc`` (``gcs`` by default, ``s3`` or ``swift``),
``op`` (``read`` by default, ``write`` or ``delete``) and ``lifetime`` (seconds, 600 by default);
the answer is the URL as ``application/octet-stream``. Permission is Rucio's ``get_signed_url``
(root, admins, or an account with the attribute ``sign-url``).

Two deliberate differences: only ``s3`` is signed (we run no Google Cloud Storage or Swift, so
``gcs`` and ``swift`` are refused with ``UnsupportedOperation``), and the URL must lie on one of
the RSE's S3 protocols, below its prefix, where Rucio signs any URL with the RSE's keys. The keys
are the server's ``[storage] s3_access_key``/``s3_secret_key``, which never leave it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import Blueprint, Response, request

from datamgmt.api.context import authorize, issuer, unit_of_work
from datamgmt.api.openapi import doc
from datamgmt.api.params import query_int
from datamgmt.api.streaming import check_accept
from datamgmt.core.invariants import storage_settings
from datamgmt.core.rse import list_protocols
from datamgmt.core.validation import shown
from datamgmt.exceptions import InvalidPath, MalformedRequest, UnsupportedOperation
from datamgmt.rse.protocols import create_protocol, implementation_name
from datamgmt.rse.protocols.s3 import SIGNED_OPERATIONS, S3Protocol

bp = Blueprint("credentials", __name__, url_prefix="/credentials")

SERVICES = ("gcs", "s3", "swift")
DEFAULT_LIFETIME = 600
#: S3 refuses pre-signed URLs that live longer than a week (SigV4).
MAX_LIFETIME = 7 * 24 * 3600
#: Schemes by which a client may name an object of an S3 protocol (PFNs say s3/s3s, HTTP clients http/https).
_S3_URL_SCHEMES = frozenset({"s3", "s3s", "http", "https"})

_QUERY: dict[str, dict[str, Any]] = {
    "rse": {"type": "string"},
    "url": {"type": "string"},
    "svc": {"type": "string", "enum": list(SERVICES)},
    "op": {"type": "string", "enum": list(SIGNED_OPERATIONS)},
    "lifetime": {"type": "integer"},
}


def _required(name: str) -> str:
    value = request.args.get(name)
    if value is None:
        raise MalformedRequest(f'Parameter "{name}" not found')
    return value


def _s3_protocols(records: list[dict[str, object]]) -> list[S3Protocol]:
    """The RSE's protocols that reach S3 (whatever ``impl`` spelling), with the server's keys."""
    chosen = (
        create_protocol(record, storage_settings())
        for record in records
        if implementation_name(record) == "s3"
    )
    return [protocol for protocol in chosen if isinstance(protocol, S3Protocol)]


def _sign(rse: str, records: list[dict[str, object]], url: str, operation: str, lifetime: int) -> str:
    """``url`` signed by the first S3 protocol of ``rse`` that it lies on."""
    parts = urlsplit(url)
    protocols = _s3_protocols(records)
    if not protocols:
        raise UnsupportedOperation(f"RSE {rse} has no S3 protocol to sign URLs for")
    if parts.scheme.lower() in _S3_URL_SCHEMES:
        for protocol in protocols:
            pfn = urlunsplit((protocol.record.scheme, *parts[1:]))
            try:
                return protocol.signed_url(pfn, operation, lifetime)
            except InvalidPath:
                continue
    raise InvalidPath(f"URL {shown(url)} does not name an object below an S3 protocol of RSE {rse}")


@bp.get("/signurl")
@bp.get("/signur")  # Rucio's own alias
@doc(
    "A pre-signed URL of an S3 RSE's object (rse, url, svc=s3, op=read|write|delete, lifetime)", query=_QUERY
)
def signurl() -> Response:
    check_accept("application/octet-stream")
    rse = _required("rse")
    lifetime = query_int("lifetime")
    lifetime = DEFAULT_LIFETIME if lifetime is None else lifetime
    service, operation = request.args.get("svc", "gcs"), request.args.get("op", "read")
    url = _required("url")
    if service not in SERVICES:
        raise MalformedRequest('Parameter "svc" must be either empty(=gcs), gcs, s3 or swift')
    if operation not in SIGNED_OPERATIONS:
        raise MalformedRequest('Parameter "op" must be either empty(=read), read, write, or delete.')
    if not 0 < lifetime <= MAX_LIFETIME:
        raise MalformedRequest(f'Parameter "lifetime" must be between 1 and {MAX_LIFETIME} seconds')
    with unit_of_work(read_only=True) as session:
        authorize(session, "get_signed_url", account=issuer(), rse=rse)
        records = list_protocols(session, rse)
    if service != "s3":
        raise UnsupportedOperation(f"Signing for service {service} is not configured here: only s3 is")
    signed = _sign(rse, records, url, operation, lifetime)
    return Response(signed, status=200, content_type="application/octet-stream")

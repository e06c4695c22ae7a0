"""OIDC bearer JWTs: checked against one issuer's published keys (JWKS), with the audience required.

Keys are cached by ``kid``.  A token naming a key we do not hold makes us fetch the JWKS again
(the issuer may have rotated its keys), but at most once per ``MIN_REFETCH_SECONDS``: a flood
of tokens with invented ``kid`` values costs the issuer one request, not one per token.  The
fetch happens before the request opens any database transaction (see api/auth.py).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt

from datamgmt.exceptions import CannotAuthenticate, ConfigurationError

#: Signature algorithms accepted from an identity provider (never "none" or HMAC).
JWT_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
#: The least time between two JWKS fetches, whatever tokens arrive.
MIN_REFETCH_SECONDS = 60.0
#: Keys older than this are fetched again when next needed (rotation without a new kid).
KEYS_LIFETIME_SECONDS = 300.0


@dataclass(frozen=True)
class OIDCClient:
    """This server as a client of the provider, for browser logins (``[auth] oidc_client_*``)."""

    client_id: str
    secret: str
    #: Where the provider sends browsers back: ``[api] base_url`` + ``/auth/oidc_code``.
    redirect_uri: str
    scope: str
    #: The most hours a session opened by a login may be renewed (``[auth] oidc_refresh_lifetime``).
    refresh_lifetime: int = 96


class OIDCVerifier:
    """Checks bearer JWTs of one issuer; thread-safe, one instance per app."""

    def __init__(self, issuer: str, jwks_url: str, audience: str) -> None:
        if not audience:
            raise ConfigurationError("[auth] oidc_audience is required when OIDC is enabled")
        self.issuer = issuer
        self.audience = audience
        self._client = jwt.PyJWKClient(jwks_url, cache_jwk_set=False, cache_keys=False, timeout=10)
        self._lock = threading.Lock()
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._failure: str | None = None

    def _key(self, kid: str) -> jwt.PyJWK:
        with self._lock:
            now = time.monotonic()
            stale = now - self._fetched_at > KEYS_LIFETIME_SECONDS
            if (kid not in self._keys or stale) and now - self._fetched_at >= MIN_REFETCH_SECONDS:
                self._fetched_at = now
                try:
                    found = self._client.get_jwk_set(refresh=True)
                    self._keys = {key.key_id: key for key in found.keys if key.key_id}
                    self._failure = None
                except jwt.PyJWKClientError as exc:
                    self._failure = str(exc)
            if kid in self._keys:
                return self._keys[kid]
            if self._failure is not None:
                raise CannotAuthenticate(
                    f"Cannot authenticate: the issuer's keys are unavailable ({self._failure})"
                )
            raise CannotAuthenticate("Cannot authenticate with given credentials: unknown signing key")

    def claims(self, token: str, audience: str | None = None) -> dict[str, Any]:
        """The claims of a token signed by the issuer for ``audience`` (ours by default), or CannotAuthenticate."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            if not isinstance(kid, str) or not kid:
                raise CannotAuthenticate("Cannot authenticate with given credentials: the token names no key")
            return dict(
                jwt.decode(
                    token,
                    self._key(kid).key,
                    algorithms=JWT_ALGORITHMS,
                    issuer=self.issuer,
                    audience=audience or self.audience,
                    options={"require": ["exp", "iss", "sub", "aud"]},
                )
            )
        except jwt.InvalidTokenError as exc:
            raise CannotAuthenticate(f"Cannot authenticate with given credentials: {exc}") from exc

    def identity(self, token: str) -> str:
        """The ``sub@iss`` identity of a valid bearer token, or CannotAuthenticate."""
        return identity_of(self.claims(token))


def identity_of(claims: dict[str, Any]) -> str:
    """Our OIDC identity name for a token's claims: ``sub@iss``."""
    return f"{claims['sub']}@{claims['iss']}"

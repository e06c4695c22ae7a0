"""A small real OpenID Connect provider on 127.0.0.1 for the browser-login tests.

It serves discovery, a JWKS, an authorization endpoint (which logs the configured user in at
once: there is no password page to drive) and a token endpoint that redeems each code once for
RS256 ID and access tokens. It is a test-side server speaking the protocol, not a stand-in for
any of our code.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, Response, abort, redirect, request
from werkzeug.serving import make_server

KID = "provider-key-1"


@dataclass
class Provider:
    client_id: str
    secret: str
    audience: str
    #: Who logs in at the authorization endpoint.
    subject: str = "alice"
    #: Set to make the ID token carry another login's nonce.
    wrong_nonce: bool = False
    url: str = ""
    key: Any = field(default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Live refresh tokens (given for the scope ``offline_access``), each good for one refresh.
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    #: How many refreshes the provider granted.
    refreshes: int = 0
    #: Set to make the token endpoint fail (500), as a provider in trouble does.
    failing: bool = False

    def token(self, audience: str, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.url, "sub": self.subject, "aud": audience, "iat": now, "exp": now + 600, **claims}
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": KID})

    def app(self) -> Flask:
        app = Flask("oidc-provider")

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Response:
            return Response(
                json.dumps(
                    {
                        "issuer": self.url,
                        "authorization_endpoint": f"{self.url}/authorize",
                        "token_endpoint": f"{self.url}/token",
                        "jwks_uri": f"{self.url}/jwks",
                        "response_types_supported": ["code"],
                        "id_token_signing_alg_values_supported": ["RS256"],
                    }
                ),
                content_type="application/json",
            )

        @app.get("/jwks")
        def jwks() -> Response:
            key = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
            return Response(
                json.dumps({"keys": [{**key, "kid": KID, "use": "sig", "alg": "RS256"}]}),
                content_type="application/json",
            )

        @app.get("/authorize")
        def authorize() -> Response:
            args = request.args
            if args.get("client_id") != self.client_id or args.get("response_type") != "code":
                abort(400)
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "nonce": args.get("nonce", ""),
                "redirect_uri": args["redirect_uri"],
                "scope": args.get("scope", ""),
            }
            return redirect(
                f"{args['redirect_uri']}?{urlencode({'code': code, 'state': args['state']})}", code=302
            )

        @app.post("/token")
        def token() -> Response:
            auth = request.authorization
            if auth is None or (auth.username, auth.password) != (self.client_id, self.secret):
                return Response(
                    json.dumps({"error": "invalid_client"}), status=401, content_type="application/json"
                )
            if self.failing:
                return Response("internal error", status=500)
            invalid = Response(
                json.dumps({"error": "invalid_grant"}), status=400, content_type="application/json"
            )
            if request.form.get("grant_type") == "refresh_token":
                subject = self.refresh_tokens.pop(request.form.get("refresh_token", ""), None)
                if subject is None:
                    return invalid
                self.refreshes += 1
                return self._tokens(subject, {}, offline=True)
            grant = self.codes.pop(request.form.get("code", ""), None)
            if grant is None or grant["redirect_uri"] != request.form.get("redirect_uri"):
                return invalid
            nonce = "another-login" if self.wrong_nonce else grant["nonce"]
            return self._tokens(
                self.subject, {"nonce": nonce}, offline="offline_access" in grant["scope"].split()
            )

        return app

    def _tokens(self, subject: str, id_claims: dict[str, str], offline: bool) -> Response:
        """The token answer for ``subject``: with a fresh refresh token when offline access was granted."""
        answer = {
            "token_type": "Bearer",
            "expires_in": 600,
            "access_token": self.token(self.audience, sub=subject),
            "id_token": self.token(self.client_id, sub=subject, **id_claims),
        }
        if offline:
            answer["refresh_token"] = secrets.token_urlsafe(24)
            self.refresh_tokens[answer["refresh_token"]] = subject
        return Response(json.dumps(answer), content_type="application/json")


@contextmanager
def running_provider(client_id: str, secret: str, audience: str) -> Iterator[Provider]:
    provider = Provider(client_id, secret, audience)
    server = make_server("127.0.0.1", 0, provider.app(), threaded=True)
    provider.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        thread.join(timeout=10)

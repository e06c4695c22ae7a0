"""HTTP to a datamgmt (or Rucio) server: authentication, errors and JSON streams.

Everything the area mixins need is here, so each of them is a list of one-line REST calls.
The wire format is Rucio's (``docs/rucio-compatibility.md``): the token travels in
``X-Rucio-Auth-Token``, lists are ``application/x-json-stream`` (one JSON document per line)
and errors name their class in ``ExceptionClass``.

A 503 (the server lost its database, or is restarting) is retried a bounded number of
times, after the ``Retry-After`` the server sent (capped) or a doubling back-off.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from datamgmt import __version__
from datamgmt.client.config import ClientConfig
from datamgmt.exceptions import CannotAuthenticate, DatamgmtError, ServiceUnavailable, error_classes

JSON = "application/json"
JSON_STREAM = "application/x-json-stream"
TOKEN_HEADER = "X-Rucio-Auth-Token"
log = logging.getLogger(__name__)
TIMEOUT = (10, 300)
#: Repeats of a call answered 503, and the longest wait between them that we honour (seconds).
UNAVAILABLE_RETRIES = 3
MAX_RETRY_WAIT = 30.0


def did_path(scope: str, name: str) -> str:
    """``scope/name`` for a URL; a name may hold slashes, which Rucio's routes accept raw."""
    return f"{quote(scope, safe='')}/{quote(name, safe='/')}"


def quoted(value: str) -> str:
    return quote(value, safe="")


def error_from_response(response: requests.Response) -> DatamgmtError:
    """Rebuild the server's exception: the JSON body first, then the headers, as Rucio's client does."""
    cls_name = message = None
    try:
        body = response.json()
        if isinstance(body, dict):
            cls_name, message = body.get("ExceptionClass"), body.get("ExceptionMessage")
    except ValueError:
        pass
    cls_name = cls_name or response.headers.get("ExceptionClass")
    message = message or response.headers.get("ExceptionMessage")
    if not cls_name:
        request = response.request
        cls_name = "HTTPError"
        message = f"{request.method} {request.path_url} answered {response.status_code} {response.reason}"
    error = _error_named(cls_name, message)
    # One wire name can travel with several statuses (DatabaseException is a 500 for a failed
    # statement and a 503 for a lost connection): the answer's own status is the true one.
    error.status = response.status_code
    return error


def retry_wait(response: requests.Response, attempt: int) -> float:
    """How long to wait before repeating a 503: ``Retry-After`` in seconds, else (absent, or an
    HTTP date) 1, 2, 4... seconds by attempt; never more than MAX_RETRY_WAIT."""
    try:
        wait = float(response.headers.get("Retry-After", ""))
    except ValueError:
        wait = 2.0**attempt
    return min(MAX_RETRY_WAIT, max(0.0, wait))


def _error_named(cls_name: str, message: str | None) -> DatamgmtError:
    known = error_classes().get(cls_name)
    if known is not None:
        error = known(message)
    else:
        # A class we do not have (a newer server, or Rucio's own): keep its name for the user.
        error = DatamgmtError(message)
        error.rucio_name = cls_name  # type: ignore[misc]
    return error


#: Headers that prove who we are: never sent on to another host by a redirect.
_CREDENTIAL_HEADERS = (TOKEN_HEADER, "X-Rucio-Username", "X-Rucio-Password", "Authorization")
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


class _Session(requests.Session):
    """requests drops ``Authorization`` when a redirect leaves the host; this drops ours too."""

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        super().rebuild_auth(prepared_request, response)
        if self.should_strip_auth(response.request.url or "", prepared_request.url or ""):
            for header in _CREDENTIAL_HEADERS:
                prepared_request.headers.pop(header, None)


def _warn_if_cleartext(url: str) -> None:
    """Passwords and tokens over plain http are readable by anyone on the path, except on loopback."""
    parsed = urlsplit(url)
    host = parsed.hostname or ""
    if parsed.scheme == "http" and host not in _LOOPBACK and not host.startswith("127."):
        log.warning("warning: %s is plain http: passwords and tokens cross the network unencrypted", url)


#: Phrases of a connection error, and what a user should read instead of the library's chain.
_CONNECTION_CAUSES = (
    ("refused", "connection refused"),
    ("Name or service not known", "host name not found"),
    ("Failed to resolve", "host name not found"),
    ("nodename nor servname", "host name not found"),
    ("timed out", "timed out"),
    ("SSL", "TLS handshake failed"),
)


def unreachable(url: str, error: Exception) -> ServiceUnavailable:
    """One line naming the URL, the cause in a few words, and what to check."""
    text = str(error)
    cause = next((short for phrase, short in _CONNECTION_CAUSES if phrase in text), type(error).__name__)
    return ServiceUnavailable(
        f"Cannot reach {url} ({cause}): is the server running there? Check [client] url in the client config "
        "or DATAMGMT_CLIENT_URL"
    )


class Transport:
    """One authenticated ``requests`` session against the configured server."""

    def __init__(self, config: ClientConfig, script: str = "datamgmt") -> None:
        self.config = config
        self.account = config.account
        self.session = _Session()
        _warn_if_cleartext(config.url)
        self.session.verify = config.ca_cert or True
        self.session.headers.update(
            {
                "X-Rucio-Account": config.account,
                "X-Rucio-VO": config.vo,
                "X-Rucio-Script": script,
                "User-Agent": f"datamgmt-client/{__version__}",
                "Accept": "*/*",
            }
        )
        self._token: str | None = None

    # --- tokens -----------------------------------------------------------------------------
    def _cached_token(self) -> str | None:
        """The OIDC token file's content, or the cached session token of this server and account."""
        path = self.config.token_cache
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            return None
        if self.config.auth_type == "oidc":
            return text or None
        try:
            cached = json.loads(text)
        except ValueError:
            return None  # an older cache, or garbage: log in again
        mine = isinstance(cached, dict) and (
            cached.get("url"),
            cached.get("account"),
            cached.get("vo", "def"),
        ) == (self.config.url, self.account, self.config.vo)
        return str(cached.get("token") or "") or None if mine else None

    def _store_token(self, token: str) -> None:
        """Write the token, with the server and account it belongs to, readable by its owner only."""
        path: Path = self.config.token_cache
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(
                {"url": self.config.url, "account": self.account, "vo": self.config.vo, "token": token},
                handle,
            )
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)

    def login(self) -> str:
        """Get a fresh token: a userpass login, or (OIDC) the current content of the token file."""
        if self.config.auth_type == "oidc":
            token = self._cached_token()
            if not token:
                raise CannotAuthenticate(f"The OIDC token file {self.config.token_cache} is empty or missing")
            self._token = token
            return token
        if not self.config.username or not self.config.password:
            raise CannotAuthenticate("[client] username and password are needed for auth_type userpass")
        response = self._send(
            "GET",
            "/auth/userpass",
            headers={"X-Rucio-Username": self.config.username, "X-Rucio-Password": self.config.password},
        )
        token = response.headers.get(TOKEN_HEADER)
        if not token:
            raise CannotAuthenticate("The server answered the login without a token")
        self._store_token(token)
        self._token = token
        return token

    def _current_token(self) -> str:
        if self._token is None:
            self._token = self._cached_token() or self.login()
        return self._token

    # --- requests ---------------------------------------------------------------------------
    def _send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        data = None if body is None else json.dumps(body)
        for attempt in range(UNAVAILABLE_RETRIES + 1):
            try:
                response = self.session.request(
                    method,
                    self.config.url + path,
                    data=data,
                    params=params,
                    headers=dict(headers or {}),
                    stream=stream,
                    timeout=TIMEOUT,
                )
            except requests.ConnectionError as error:
                raise unreachable(self.config.url, error) from error
            if response.status_code != 503 or attempt == UNAVAILABLE_RETRIES:
                break
            response.close()
            time.sleep(retry_wait(response, attempt))
        if response.status_code >= 400:
            with response:
                raise error_from_response(response)
        return response

    def request(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> requests.Response:
        """Send one call; on 401 with a cached token, log in once more and repeat it."""
        if not auth:
            return self._send(method, path, **kwargs)
        token = self._current_token()
        try:
            return self._send(method, path, headers={TOKEN_HEADER: token}, **kwargs)
        except CannotAuthenticate:
            return self._send(method, path, headers={TOKEN_HEADER: self.login()}, **kwargs)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """A call answering one JSON document (``None`` for an empty body)."""
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None

    def call(self, method: str, path: str, **kwargs: Any) -> None:
        """A call whose answer carries no data (``Created`` or an empty 200)."""
        self.request(method, path, **kwargs).close()

    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[Any]:
        """A list call: the request is sent now, the lines are parsed as they are consumed."""
        response = self.request(method, path, stream=True, **kwargs)
        if response.headers.get("Content-Type", "").split(";")[0].strip() == JSON:
            # Some small lists come as one JSON array (``GET /scopes/``).
            with response:
                document = response.json() if response.content else []
            return iter(document if isinstance(document, list) else [document])
        return _json_lines(response)


def _json_lines(response: requests.Response) -> Iterator[Any]:
    """The stream's documents; a stream the server cut short (its database dropped or its worker
    died after the first lines went out) is a retriable ``ServiceUnavailable``."""
    with response:
        try:
            for line in response.iter_lines():
                if line.strip():
                    yield json.loads(line)
        except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError) as error:
            request = response.request
            raise ServiceUnavailable(
                f"The answer to {request.method} {request.path_url} was cut short: {error}"
            ) from error

"""The Flask application factory: Rucio's REST dialect over the core services.

Order matters: error handlers first (so every later failure is answered in Rucio's
format), then the flood limit and authentication, metrics, the v1 blueprints, and last the OpenAPI
document, which describes whatever routes are registered by then.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

from flask import Blueprint, Flask

from datamgmt.api import auth
from datamgmt.api.context import CatalogueFlask
from datamgmt.api.errors import register_error_handlers
from datamgmt.api.flood import install_flood_limit
from datamgmt.api.headers import install_security_headers
from datamgmt.api.metrics import install_metrics
from datamgmt.api.openapi import install_openapi
from datamgmt.api.v1 import blueprints
from datamgmt.config import PROJECT_ROOT, Config, get_config
from datamgmt.web import create_blueprint


def create_app(config: Config | None = None, database_url: str | None = None) -> Flask:
    """A ready app; ``database_url`` overrides ``[database] url`` (tests, benchmarks)."""
    config = config or get_config()
    app = CatalogueFlask("datamgmt", static_folder=None)
    app.config.update(
        DATABASE_URL=database_url or config.get("database", "url"),
        MULTI_VO=config.get_bool("common", "multi_vo"),
        STREAM_BATCH=max(1, config.get_int("api", "stream_batch")),
        TOKEN_LIFETIME=config.get_int("auth", "token_lifetime"),
        MAX_CONTENT_LENGTH=config.get_int("api", "max_body_bytes"),  # larger bodies: 413
        METRICS_PUBLIC=config.get_bool("api", "metrics_public"),
        MAX_STREAMS=max(1, config.get_int("api", "max_streams")),
    )
    register_error_handlers(app)
    install_security_headers(app)
    install_flood_limit(app, config)  # before authentication: a flood costs no token lookup
    auth.configure(app, config)
    install_metrics(app)
    for blueprint in blueprints():
        app.register_blueprint(blueprint)
    oaipmh = _oaipmh_blueprint(config, app.config["DATABASE_URL"])
    app.register_blueprint(oaipmh)
    app.secret_key = _stable_secret(config, "web", "secret", "web_secret")
    app.config["SESSION_COOKIE_SECURE"] = config.get_bool("web", "secure_cookie")
    app.register_blueprint(create_blueprint())
    # OAI-PMH is open to anonymous harvesters; the web pages sign in with their own cookie.
    for endpoint, view in app.view_functions.items():
        if endpoint.startswith((f"{oaipmh.name}.", "ui.")):
            auth.public(view)
    install_openapi(app)
    return app


def _oaipmh_blueprint(config: Config, database_url: str) -> Blueprint:
    """The OAI-PMH repository at /oai_pmh over the published shares; open to anonymous harvesters."""
    from datamgmt.api.oaipmh import make_oaipmh_blueprint
    from datamgmt.core.oai_repository import CatalogueRepository

    blueprint = make_oaipmh_blueprint(
        CatalogueRepository.from_config(database_url),
        secret=_stable_secret(config, "oaipmh", "token_secret", "oai_token_secret"),
        page_size=config.get_int("oaipmh", "page_size"),
        token_lifetime=timedelta(seconds=config.get_int("oaipmh", "token_lifetime")),
    )
    return blueprint


def _stable_secret(config: Config, section: str, option: str, file_name: str) -> bytes:
    """``[section] option``, else a random key kept in var/ so every worker signs alike."""
    configured = config.get(section, option)
    if configured:
        return configured.encode()
    path = Path(config.get(section, f"{option}_file", str(PROJECT_ROOT / "var" / file_name)))
    if not path.exists():
        _create_secret(path)
    return path.read_text().strip().encode()


def _create_secret(path: Path) -> None:
    """Write a random key to ``path`` unless another process has just done so, whose key wins.

    Workers that start together (gunicorn's, or parallel test workers) all find it missing:
    the key is written whole to a file of this process's own, then linked into place, which
    only the first may do, so no worker fails and none reads a half-written key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    spare = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
        os.link(spare, path)
    except FileExistsError:
        pass
    finally:
        spare.unlink()

"""Server configuration: one INI file, every option overridable from the environment.

The file is ``$DATAMGMT_CONFIG`` or ``etc/datamgmt.cfg``; an option ``[section] key``
is overridden by ``DATAMGMT_<SECTION>_<KEY>`` (upper case), which is how containers,
CI and tests point the service elsewhere without editing files.  Defaults live here,
in one table, so a missing file still gives a working embedded service.
"""

from __future__ import annotations

import configparser
import os
import threading
from pathlib import Path

from datamgmt.exceptions import ConfigurationError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Every known option and its default.  The template in etc/ documents them.
DEFAULTS: dict[str, dict[str, str]] = {
    # Several communities (VOs) on one instance, each in a catalogue of its own (core/vo.py).
    "common": {"multi_vo": "false"},
    "database": {
        "url": f"sqlite:///{PROJECT_ROOT / 'var' / 'datamgmt.db'}",
        "echo": "false",
        "pool_size": "5",
        "max_overflow": "10",
        "sqlite_busy_timeout_ms": "30000",
    },
    "api": {
        "host": "127.0.0.1",
        "port": "8080",
        "base_url": "",
        "workers": "2",
        "server": "gunicorn",
        "stream_batch": "1000",
        "health_daemons": "",
        "max_body_bytes": str(64 * 1024 * 1024),
        "metrics_public": "false",
        "max_streams": "4",
        # How long a gunicorn thread with nothing else to do busy-waits for its kept-alive
        # connection's next request before it sleeps (api/gunicorn_worker.py); 0 turns it off.
        "busy_poll_us": "1000",
        # The same, for PostgreSQL's answer to a statement (core/db/busy_wait.py): long enough
        # for a write's WAL flush, which an admin call's one statement waits for.
        "db_busy_poll_us": "1500",
        # The flood limit (api/flood.py): requests per source and window to login and other
        # unauthenticated requests; 0 turns it off.  Sources listed in flood_exempt are not counted.
        "flood_max_requests": "300",
        "flood_window": "60",
        "flood_exempt": "127.0.0.1,::1",
    },
    "auth": {
        "token_lifetime": "3600",
        "x509_header": "",
        "x509_proxies": "127.0.0.1,::1",
        "oidc_issuer": "",
        "oidc_jwks_url": "",
        "oidc_audience": "",
        # The browser login flow (/auth/oidc): our client at the provider, and the scope asked by default.
        "oidc_client_id": "",
        "oidc_client_secret": "",
        "oidc_scope": "openid profile",
        # How long a session opened by a login with offline_access may be renewed (/auth/oidc_refresh), in hours.
        "oidc_refresh_lifetime": "96",
        "scrypt_n": "131072",
        "login_max_failures": "10",
        "login_source_max_failures": "50",
        "login_window": "300",
        "login_lockout": "300",
        "token_cache_seconds": "60",
    },
    "cache": {
        "backend": "memory",
        "url": "",
        "prefix": "datamgmt",
        "expiration_time": "600",
        "generation_dir": "",
    },
    "conveyor": {
        "transfertool": "local",
        "fts_host": "",
        "max_retries": "3",
        "files_per_job": "100",
        "local_threads": "4",
        "local_lease_seconds": "30",
        "local_staging_seconds": "0",
        "local_archive_seconds": "0",
        "separate_stager": "false",
        "max_active_per_rse": "100",
        "poll_interval": "5",
        "submit_retry_seconds": "10",
        "fts_timeout": "30",
        "activity_limits": "",
        "submitted_timeout": "21600",
        "bring_online": "43200",
        "copy_pin_lifetime": "172800",
        "archive_timeout": "86400",
        "fts_proxy": "",
        "fts_cert": "",
        "fts_key": "",
        "fts_token_file": "",
        "fts_ca_path": "",
    },
    "reaper": {
        "greedy": "false",
        "chunk_size": "100",
        "grace_seconds": "0",
    },
    "judge": {
        "stuck_suspend_hours": "48",
        "async_lock_threshold": "10000",
        "repair_backoff_seconds": "600",
    },
    "hermes": {
        "broker_url": "",
        "exchange": "datamgmt",
        "routing_key": "",
        "stomp_url": "",
        "stomp_destination": "/queue/datamgmt",
        "webhook_url": "",
        "webhook_secret": "",
        "timeout": "30",
        "bulk": "1000",
        "retry_seconds": "10",
        "retry_max_seconds": "600",
    },
    "logging": {
        # auto: human-readable lines on a terminal, JSON lines otherwise; or text / json.
        "format": "auto",
        # gfal2's own messages below this level are dropped (its INFO is per-operation chatter).
        "gfal2_level": "warning",
    },
    "daemons": {
        "lease_seconds": "120",
        "heartbeat_timeout": "120",
        "sleep_max": "60",
    },
    "oaipmh": {
        "page_size": "100",
        "repository_name": "datamgmt repository",
        "repository_identifier": "datamgmt.local",
        "admin_email": "admin@localhost.localdomain",
        "token_secret": "",
        "token_lifetime": "86400",
    },
    "web": {
        "secret": "",
        "secure_cookie": "false",
        "oidc_client_id": "",
        "oidc_client_secret": "",
        "oidc_authorize_url": "",
        "oidc_token_url": "",
        "oidc_scope": "openid",
    },
    "pid": {
        "default_service": "local",
        "local_prefix": "21.T99999",
    },
    "storage": {
        "root": str(PROJECT_ROOT / "var" / "storage"),
        "s3_access_key": "",
        "s3_secret_key": "",
        "s3_region": "us-east-1",
    },
}

ENV_PREFIX = "DATAMGMT_"


class Config:
    """Read-only view of the merged configuration (defaults < file < environment)."""

    def __init__(self, path: Path | None = None, environ: dict[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self.path = path or Path(self._environ.get("DATAMGMT_CONFIG", PROJECT_ROOT / "etc" / "datamgmt.cfg"))
        self._parser = configparser.ConfigParser(interpolation=None)
        self._parser.read_dict(DEFAULTS)
        if self.path.is_file():
            try:
                self._parser.read(self.path)
            except configparser.Error as exc:
                raise ConfigurationError(f"cannot parse {self.path}: {exc}") from exc

    def get(self, section: str, option: str, fallback: str | None = None) -> str:
        env_name = f"{ENV_PREFIX}{section}_{option}".upper()
        if env_name in self._environ:
            return self._environ[env_name]
        if self._parser.has_option(section, option):
            return self._parser.get(section, option)
        if fallback is not None:
            return fallback
        raise ConfigurationError(f"missing configuration option [{section}] {option}")

    def get_int(self, section: str, option: str, fallback: int | None = None) -> int:
        raw = self.get(section, option, None if fallback is None else str(fallback))
        try:
            return int(raw)
        except ValueError as exc:
            raise ConfigurationError(f"[{section}] {option} must be an integer, not {raw[:40]!r}") from exc

    def get_float(self, section: str, option: str, fallback: float | None = None) -> float:
        raw = self.get(section, option, None if fallback is None else str(fallback))
        try:
            return float(raw)
        except ValueError as exc:
            raise ConfigurationError(f"[{section}] {option} must be a number, not {raw[:40]!r}") from exc

    def get_bool(self, section: str, option: str, fallback: bool | None = None) -> bool:
        raw = self.get(section, option, None if fallback is None else str(fallback)).strip().lower()
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off", ""):
            return False
        raise ConfigurationError(f"[{section}] {option} must be a boolean, not {raw[:40]!r}")

    def section(self, section: str) -> dict[str, str]:
        """All options of a section, with environment overrides applied."""
        names = set(self._parser.options(section)) if self._parser.has_section(section) else set()
        prefix = f"{ENV_PREFIX}{section}_".upper()
        names |= {key[len(prefix) :].lower() for key in self._environ if key.startswith(prefix)}
        return {name: self.get(section, name) for name in sorted(names)}


_lock = threading.Lock()
_current: Config | None = None


def get_config() -> Config:
    """The process-wide configuration, read once."""
    global _current
    with _lock:
        if _current is None:
            _current = Config()
        return _current


def reset_config(config: Config | None = None) -> None:
    """Replace the process-wide configuration (tests and `--config` flags)."""
    global _current
    with _lock:
        _current = config

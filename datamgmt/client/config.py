"""The client's settings: the ``[client]`` INI section (docs/architecture.md, "Stable names").

The file is ``$DATAMGMT_CLIENT_CONFIG`` or ``~/.datamgmt/client.cfg`` (either may be missing);
every option can be overridden by ``DATAMGMT_CLIENT_<OPTION>``, so a CI job or a container needs
no file at all.
"""

from __future__ import annotations

import configparser
import hashlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from datamgmt.exceptions import ConfigurationError

SECTION = "client"
ENV_PREFIX = "DATAMGMT_CLIENT_"
AUTH_TYPES = ("userpass", "oidc")


def default_config_path() -> Path:
    return Path(os.environ.get("DATAMGMT_CLIENT_CONFIG") or Path.home() / ".datamgmt" / "client.cfg")


@dataclass(frozen=True)
class ClientConfig:
    """Where the server is and who we are to it."""

    url: str
    account: str
    auth_type: str = "userpass"
    username: str | None = None
    password: str | None = None
    #: userpass: where the session token is cached; oidc: the file holding the bearer token.
    token_file: str | None = None
    #: A CA bundle for https servers with a private CA.
    ca_cert: str | None = None
    #: The VO to work in on a multi-VO server (Rucio's ``[client] vo``).
    vo: str = "def"

    def __post_init__(self) -> None:
        if not self.url:
            raise ConfigurationError(
                f"[{SECTION}] url is not set (file {default_config_path()} or {ENV_PREFIX}URL)"
            )
        if not self.account:
            raise ConfigurationError(f"[{SECTION}] account is not set ({ENV_PREFIX}ACCOUNT)")
        if self.auth_type not in AUTH_TYPES:
            raise ConfigurationError(
                f"[{SECTION}] auth_type must be one of {AUTH_TYPES}, not {self.auth_type!r}"
            )
        if self.auth_type == "oidc" and not self.token_file:
            raise ConfigurationError(f"[{SECTION}] auth_type oidc needs token_file")
        object.__setattr__(self, "url", self.url.rstrip("/"))

    @property
    def token_cache(self) -> Path:
        """The 0600 file that keeps a userpass session token between invocations.

        Its default name holds the account and a digest of the server URL, so that a token
        issued by one server is never presented to another (the file also records both,
        which guards a ``token_file`` shared by several configurations).
        """
        if self.token_file:
            return Path(self.token_file).expanduser()
        server = hashlib.sha256(self.url.encode()).hexdigest()[:16]
        vo = "" if self.vo == "def" else f"_{self.vo}"
        return Path.home() / ".datamgmt" / f"token_{self.account}_{server}{vo}"

    @classmethod
    def load(
        cls, path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
    ) -> ClientConfig:
        """Read the file (if it exists), then apply ``DATAMGMT_CLIENT_*`` overrides."""
        environ = os.environ if environ is None else environ
        parser = configparser.ConfigParser(interpolation=None)
        file = Path(path) if path else default_config_path()
        parser.read(file)
        values: dict[str, str] = dict(parser[SECTION]) if parser.has_section(SECTION) else {}
        if values.get("password"):
            _refuse_if_readable_by_others(file)
        known = {field.name for field in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigurationError(f"Unknown [{SECTION}] options: {sorted(unknown)}")
        for name in known:
            override = environ.get(ENV_PREFIX + name.upper())
            if override is not None:
                values[name] = override
        # An empty value means "not set", so an override can also clear a file's option.
        present = {key: value for key, value in values.items() if value}
        return cls(url=present.pop("url", ""), account=present.pop("account", ""), **present)


def _refuse_if_readable_by_others(file: Path) -> None:
    """A file holding a password must be the owner's alone (mode 0600), as ssh insists for keys."""
    mode = stat.S_IMODE(file.stat().st_mode)
    if mode & 0o077:
        raise ConfigurationError(
            f"{file} holds a password but its mode is {mode:04o}: others may read it; run chmod 600 {file}"
        )

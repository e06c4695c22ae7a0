"""PID service clients (Handle, DataCite, local) behind one interface, :class:`PIDClient`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from datamgmt.exceptions import ConfigurationError
from datamgmt.pid.base import PIDClient, Resolution
from datamgmt.pid.datacite import DataCiteClient
from datamgmt.pid.handle import HandleClient
from datamgmt.pid.local import LocalPIDClient

__all__ = ["PIDClient", "Resolution", "make_pid_client"]

_CLIENTS: dict[str, type] = {"handle": HandleClient, "datacite": DataCiteClient, "local": LocalPIDClient}


def make_pid_client(service_type: str, properties: Mapping[str, Any]) -> PIDClient:
    """The client for a PID service row: ``service_type`` picks the class, ``properties`` are its
    keyword arguments (``endpoint``, ``prefix``, ``username``, ``password``, ``verify`` for Handle
    and DataCite; ``prefix``, ``resolver_url`` for local).
    """
    try:
        client_class = _CLIENTS[service_type]
    except KeyError:
        raise ConfigurationError(f"unknown PID service type {service_type!r}") from None
    try:
        return client_class(**properties)
    except TypeError as exc:
        raise ConfigurationError(f"bad properties for a {service_type} PID service: {exc}") from exc

"""Python client of the datamgmt REST API (Rucio's dialect); depends on requests only."""

from datamgmt.client.client import Client
from datamgmt.client.config import ClientConfig

__all__ = ["Client", "ClientConfig"]

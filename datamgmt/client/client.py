"""The datamgmt client: every REST area in one object."""

from __future__ import annotations

from datamgmt.client.accounts import AccountClient
from datamgmt.client.config import ClientConfig
from datamgmt.client.dids import DIDClient
from datamgmt.client.metadata import MetadataClient
from datamgmt.client.operations import OperationsClient
from datamgmt.client.pids import PIDClient
from datamgmt.client.replicas import ReplicaClient
from datamgmt.client.rses import RSEClient
from datamgmt.client.rules import RuleClient
from datamgmt.client.subscriptions import SubscriptionClient


class Client(
    AccountClient,
    RSEClient,
    DIDClient,
    ReplicaClient,
    RuleClient,
    MetadataClient,
    PIDClient,
    OperationsClient,
    SubscriptionClient,
):
    """``Client()`` reads the ``[client]`` configuration; pass a :class:`ClientConfig` to skip it."""

    def __init__(self, config: ClientConfig | None = None, script: str = "datamgmt") -> None:
        super().__init__(config or ClientConfig.load(), script)

    def ping(self) -> dict[str, str]:
        """The server's version; needs no token."""
        return self.json("GET", "/ping", auth=False)

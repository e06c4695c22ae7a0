"""Will an account's quota take N more bytes where a rule would put them?

Asked before an upload writes a byte (the server would only refuse the rule afterwards, leaving
files on storage that nothing protects) and by ``rule explain`` to say why a rule cannot be made.
The arithmetic is the server's (Rucio's): a missing local limit is 0 bytes, -1 is unlimited,
admins are exempt, a global limit caps the sum over its expression's RSEs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from datamgmt.client.units import human_size
from datamgmt.exceptions import InsufficientAccountLimit

if TYPE_CHECKING:
    from datamgmt.client.client import Client

UNLIMITED = -1


@dataclass(frozen=True)
class QuotaShortfall:
    """``needed`` bytes must land on ``where`` (an RSE, or a global limit's expression)."""

    where: str
    needed: int
    remaining: int

    def __str__(self) -> str:
        return f"needs {human_size(self.needed)} on {self.where}, {human_size(max(self.remaining, 0))} left"

    def as_dict(self) -> dict[str, object]:
        return {"rse": self.where, "bytes_needed": self.needed, "bytes_remaining": max(self.remaining, 0)}


def is_admin(client: Client, account: str) -> bool:
    if account == "root":
        return True
    attributes = {
        row.get("key"): str(row.get("value")).lower() for row in client.list_account_attributes(account)
    }
    return attributes.get("admin") == "true"


def _fits(remaining: int, nbytes: int) -> bool:
    return remaining == UNLIMITED or remaining >= nbytes


def quota_shortfalls(
    client: Client, account: str, rses: Sequence[str], nbytes: int, copies: int = 1
) -> list[QuotaShortfall]:
    """The limits that keep ``nbytes`` from landing on ``copies`` of ``rses``; empty when it fits."""
    if nbytes <= 0 or is_admin(client, account):
        return []
    remaining: dict[str, int] = {rse: 0 for rse in rses}
    for row in client.local_usage(account):
        if row.get("rse") in remaining:
            limit = row.get("bytes_limit") or 0
            remaining[row["rse"]] = UNLIMITED if limit == UNLIMITED else limit - (row.get("bytes") or 0)
    fitting = [rse for rse in rses if _fits(remaining[rse], nbytes)]
    shortfalls = []
    if len(fitting) < copies:
        shortfalls = [
            QuotaShortfall(rse, nbytes, left) for rse, left in remaining.items() if rse not in fitting
        ]
    for row in client.global_usage(account):
        limit = row.get("bytes_limit")
        if limit is None or limit == UNLIMITED or not fitting:
            continue
        covered = {item["rse"] for item in client.list_rses(row["rse_expression"])}
        if set(fitting) <= covered:  # every copy the rule can make counts against this limit
            left = limit - (row.get("bytes") or 0)
            if left < nbytes * copies:
                shortfalls.append(QuotaShortfall(row["rse_expression"], nbytes * copies, left))
    return shortfalls


def require_quota(
    client: Client, account: str, rses: Sequence[str], nbytes: int, copies: int = 1, what: str = "The upload"
) -> None:
    """Raise InsufficientAccountLimit, with the numbers, when :func:`quota_shortfalls` finds any."""
    shortfalls = quota_shortfalls(client, account, rses, nbytes, copies)
    if shortfalls:
        raise InsufficientAccountLimit(
            f"{what} {'; '.join(map(str, shortfalls))} (quota of account {account}): "
            "ask an admin for more, or upload less"
        )

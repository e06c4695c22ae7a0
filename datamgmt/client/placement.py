"""Why a rule cannot be placed, RSE by RSE, in numbers a user can act on.

The server's placement refuses a whole rule with one exception (InsufficientTargetRSEs,
InsufficientAccountLimit, RSEOverQuota). ``rule add`` and ``rule explain`` then ask what each
RSE of the expression offers: whether it takes writes, and the account's quota left there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from datamgmt.client.quota import UNLIMITED, is_admin
from datamgmt.client.units import human_size
from datamgmt.exceptions import DatamgmtError

if TYPE_CHECKING:
    from datamgmt.client.client import Client

#: The server's refusals of a rule's placement that this module explains.
PLACEMENT_REFUSALS = ("InsufficientTargetRSEs", "InsufficientAccountLimit", "RSEOverQuota")


def dids_bytes(client: Client, dids: Sequence[tuple[str, str]]) -> int:
    return sum(client.get_did(scope, name).get("bytes") or 0 for scope, name in dids)


def rse_verdicts(client: Client, rse_expression: str, nbytes: int) -> list[dict[str, Any]]:
    """Per RSE of the expression: writable, quota left for the account, and why it is excluded (or "")."""
    rses = [row["rse"] for row in client.list_rses(rse_expression)]
    exempt = is_admin(client, client.account)
    left = {rse: 0 for rse in rses}
    for row in client.local_usage(client.account):
        if row.get("rse") in left:
            limit = row.get("bytes_limit") or 0
            left[row["rse"]] = UNLIMITED if limit == UNLIMITED else limit - (row.get("bytes") or 0)
    verdicts = []
    for rse in rses:
        writable = client.get_rse(rse).get("availability_write", True) is not False
        quota_left = UNLIMITED if exempt or left[rse] == UNLIMITED else max(left[rse], 0)
        reasons = [] if writable else ["not available for writing"]
        if quota_left != UNLIMITED and quota_left < nbytes:
            reasons.append(f"quota: needs {human_size(nbytes)}, {human_size(quota_left)} left")
        verdicts.append(
            {
                "rse": rse,
                "writable": writable,
                "bytes_needed": nbytes,
                "quota_left": quota_left,
                "excluded_because": "; ".join(reasons),
            }
        )
    return verdicts


def explained_refusal(
    client: Client, error: DatamgmtError, dids: Sequence[tuple[str, str]], rse_expression: str, copies: int
) -> DatamgmtError:
    """The server's refusal with, appended, how many RSEs matched and why each was excluded."""
    verdicts = rse_verdicts(client, rse_expression, dids_bytes(client, dids))
    usable = [item["rse"] for item in verdicts if not item["excluded_because"]]
    detail = "; ".join(f"{item['rse']}: {item['excluded_because'] or 'usable'}" for item in verdicts)
    message = (
        f"{error.message}. {rse_expression!r} matched {len(verdicts)} RSEs, {len(usable)} usable, "
        f"{copies} needed" + (f" ({detail})" if detail else "")
    )
    return type(error)(message)

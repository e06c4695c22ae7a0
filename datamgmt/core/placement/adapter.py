"""From catalogue state to a ``PlacementProblem``, and the result back to RSE ids.

The solver sees arrays; this module fills them from the RSEs an expression resolved to:
write availability, free space (``MaxSpaceAvailable`` limit minus the ``rucio`` usage), the
rule's weight attribute, and the account's quota, local and global.  The solver enforces
per-RSE quota; a global limit spans several RSEs, so it is given to each RSE as an upper
bound and the sum over the batch is checked afterwards (:meth:`Targets.check_global_limits`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from datamgmt.core.db.constants import RSEType
from datamgmt.core.db.models import RSEAttribute, RSELimit, RSEUsage
from datamgmt.core.placement.solver import PlacementProblem, PlacementResult
from datamgmt.core.quota import QuotaLeft, quota_left
from datamgmt.exceptions import InsufficientAccountLimit, InsufficientTargetRSEs, InvalidRuleWeight

#: The RSE limit that bounds what rules may place on an RSE (Rucio's name).
MAX_SPACE = "MaxSpaceAvailable"
#: The usage source the catalogue itself maintains.
CATALOGUE_USAGE = "rucio"


@dataclass(frozen=True, eq=False)
class Targets:
    """The candidate RSEs of a rule, indexed as the solver's arrays are."""

    rse_ids: list[str]
    names: list[str]
    rse_types: list[RSEType]
    free_bytes: np.ndarray
    capacity: np.ndarray
    quota_left: np.ndarray
    weight: np.ndarray
    write_available: np.ndarray
    quota: QuotaLeft

    @property
    def index(self) -> dict[str, int]:
        return {rse_id: i for i, rse_id in enumerate(self.rse_ids)}

    def problem(
        self,
        item_bytes: Sequence[int] | np.ndarray,
        copies: int,
        present: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        seed: int = 0,
        candidates: np.ndarray | None = None,
    ) -> PlacementProblem:
        """A batch over these RSEs: every item with ``copies`` copies and all RSEs as candidates
        (or ``candidates``, a boolean mask); ``present`` is ``present_from_triples``' output."""
        n = len(self.rse_ids)
        indices = (
            np.arange(n, dtype=np.int32)
            if candidates is None
            else np.flatnonzero(candidates).astype(np.int32)
        )
        item_bytes = np.asarray(item_bytes, dtype=np.int64)
        extra: dict[str, np.ndarray] = {}
        if present is not None:
            extra = {"present_indptr": present[0], "present_rse": present[1], "present_bytes": present[2]}
        return PlacementProblem(
            free_bytes=self.free_bytes,
            capacity=self.capacity,
            quota_left=self.quota_left,
            weight=self.weight,
            write_available=self.write_available,
            item_bytes=item_bytes,
            copies=np.full(item_bytes.shape[0], copies, np.int32),
            set_indptr=np.array([0, indices.shape[0]], np.int64),
            set_indices=indices,
            seed=seed,
            **extra,
        )

    def check_global_limits(self, result: PlacementResult, item_bytes: np.ndarray) -> None:
        """Raise InsufficientAccountLimit if the batch as a whole overdraws a global limit."""
        if self.quota.unlimited or not self.quota.global_limits:
            return
        charged = np.zeros(len(self.rse_ids), np.int64)
        rows, cols = np.nonzero(result.chosen >= 0)
        np.add.at(charged, result.chosen[rows, cols], np.asarray(item_bytes, np.int64)[rows])
        by_id = dict(zip(self.rse_ids, charged.tolist(), strict=True))
        for limit in self.quota.global_limits:
            total = sum(by_id.get(r, 0) for r in limit.rse_ids)
            if total > max(limit.left, 0):
                raise InsufficientAccountLimit(
                    f"the rule needs {total} bytes under the global limit on {limit.rse_expression!r}, "
                    f"{max(limit.left, 0)} left"
                )


def _weights(session: Session, rse_ids: list[str], weight: str | None) -> np.ndarray:
    if weight is None:
        return np.ones(len(rse_ids))
    rows = dict(
        session.execute(
            select(RSEAttribute.rse_id, RSEAttribute.value).where(
                RSEAttribute.key == weight, RSEAttribute.rse_id.in_(rse_ids)
            )
        )
        .tuples()
        .all()
    )
    values = np.full(len(rse_ids), np.nan)
    for i, rse_id in enumerate(rse_ids):
        if rse_id in rows:
            try:
                values[i] = float(rows[rse_id])
            except ValueError as exc:
                raise InvalidRuleWeight(
                    f"the weight attribute {weight!r} is not a number on every RSE"
                ) from exc
    return values


def _space(session: Session, rse_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    limits = dict(
        session.execute(
            select(RSELimit.rse_id, RSELimit.value).where(
                RSELimit.name == MAX_SPACE, RSELimit.rse_id.in_(rse_ids)
            )
        )
        .tuples()
        .all()
    )
    used = dict(
        session.execute(
            select(RSEUsage.rse_id, RSEUsage.used).where(
                RSEUsage.source == CATALOGUE_USAGE, RSEUsage.rse_id.in_(rse_ids)
            )
        )
        .tuples()
        .all()
    )
    capacity = np.array([max(limits.get(r, 0), 0) for r in rse_ids], np.int64)
    free = np.array(
        [max(limits[r] - used.get(r, 0), 0) if limits.get(r, -1) >= 0 else -1 for r in rse_ids], np.int64
    )
    return free, capacity


def load_targets(
    session: Session,
    rses: list[dict[str, Any]],
    account: str,
    *,
    weight: str | None = None,
    ignore_availability: bool = False,
    ignore_account_limit: bool = False,
) -> Targets:
    """The solver's view of the RSEs ``parse_expression`` returned, for ``account``.

    With ``weight``, only RSEs carrying that attribute take part (Rucio's RSESelector).
    """
    rses = sorted(rses, key=lambda r: r["rse"])
    rse_ids = [r["id"] for r in rses]
    weights = _weights(session, rse_ids, weight)
    keep = ~np.isnan(weights)
    if not keep.all():
        rses = [r for r, k in zip(rses, keep, strict=True) if k]
        rse_ids = [r["id"] for r in rses]
        weights = weights[keep]
    if not rses:
        raise InsufficientTargetRSEs("no RSE of the expression qualifies for the rule")
    free, capacity = _space(session, rse_ids)
    quota = quota_left(session, account, rse_ids, waived=ignore_account_limit)
    return Targets(
        rse_ids=rse_ids,
        names=[r["rse"] for r in rses],
        rse_types=[RSEType.parse(r.get("rse_type") or "DISK") for r in rses],
        free_bytes=free,
        capacity=capacity,
        quota_left=np.array([quota.for_rse(r) for r in rse_ids], np.int64),
        weight=weights,
        write_available=np.array(
            [ignore_availability or bool(r.get("availability_write", True)) for r in rses]
        ),
        quota=quota,
    )

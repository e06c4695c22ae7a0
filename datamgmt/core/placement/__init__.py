"""Placement solver: which RSEs receive the copies of each item of a batch of rules.

Pure array code, no database: adapters resolve expressions, quotas and replicas into a
``PlacementProblem`` and turn the ``PlacementResult`` into locks.  Rule creation, the judge's
repair of stuck rules and bulk placement all call ``place``.

Like Rucio's ``RSESelector`` it honours write availability, space, account quota, weights
and the preference for RSEs that already hold the data; unlike it, it places a whole batch
at once, deterministically for a seed, and balances fill ratios instead of drawing at random.

The rule
--------
Items are taken largest first (ties in input order).  For item *i* of ``b`` bytes and ``c``
copies, a candidate is an RSE of its candidate set that

1. is writable (else not a target; fewer than ``c`` targets -> INSUFFICIENT_TARGET_RSES),
2. has ``free >= b - covered``, where ``covered = min(bytes of i already there, b)``
   (fewer than ``c`` -> INSUFFICIENT_SPACE), and
3. has ``quota_left >= b``: quota is charged in full, per lock, as Rucio does
   (fewer than ``c`` -> INSUFFICIENT_QUOTA).

The ``c`` candidates that come first in the lexicographic order of

    (tier, -covered, score, tie, rse index)

are chosen, where

* ``tier`` is 0 when the item is fully present (an entry with bytes >= b), 1 when partly
  present, 2 otherwise: existing data wins first, then the RSE holding most of it;
* ``score = ((used + b - covered) / capacity + 1e-9) / weight + distance`` is the fill ratio
  after placement, divided by the weight and plus the distance penalty (lower is better).
  At equilibrium fill ratios are proportional to the weights, so with equal capacities the
  bytes each RSE receives are proportional to its weight, as Rucio's weighted draw gives on
  average.  Unknown capacity counts as empty (fill 0, so the 1e-9 floor lets the weight
  decide); weight 0 gives an infinite score, a last resort;
* ``tie = splitmix64(item_key(seed, i) xor rse)``: a seeded random order of the RSEs, drawn
  afresh for every item, that breaks exact ties (e.g. among RSEs of unknown capacity).

After choosing, free space drops by ``b - covered`` and quota by ``b`` on each chosen RSE, so
later items of the batch see them: a batch never overfills an RSE or overdraws a quota.  An
item is placed with all its copies or not at all.

Both backends, the numba kernel (``kernels``) and the numpy fallback (``fallback``, selected
with ``DATAMGMT_NUMBA=0``), share the arithmetic of ``scoring`` and return identical arrays.
"""

from datamgmt.core.placement.solver import (
    PlacementProblem,
    PlacementResult,
    RSEState,
    Status,
    candidate_sets,
    place,
    present_from_triples,
    single_rule_problem,
)

__all__ = [
    "PlacementProblem",
    "PlacementResult",
    "RSEState",
    "Status",
    "candidate_sets",
    "place",
    "present_from_triples",
    "single_rule_problem",
]

"""numba kernel of the placement solver (nopython, cached, CPU).

It is the loop of ``fallback.place_batch`` written item by item and candidate by candidate;
see the package docstring for the rule both follow.  The arrays ``free``, ``quota`` and
``used`` are working copies that the kernel decrements/increments as it places.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from datamgmt.core.placement import scoring

_mix64 = njit(cache=True)(scoring.mix64)
_fill_score = njit(cache=True, error_model="numpy")(scoring.fill_score)

_OK = scoring.OK
_NO_TARGETS = scoring.INSUFFICIENT_TARGET_RSES
_NO_SPACE = scoring.INSUFFICIENT_SPACE
_NO_QUOTA = scoring.INSUFFICIENT_QUOTA
_FULL = scoring.TIER_FULL
_PARTIAL = scoring.TIER_PARTIAL
_ABSENT = scoring.TIER_ABSENT
_TAKEN = 127


@njit(cache=True)
def _before(
    tier_a: int,
    cov_a: int,
    score_a: float,
    tie_a: int,
    rse_a: int,
    tier_b: int,
    cov_b: int,
    score_b: float,
    tie_b: int,
    rse_b: int,
) -> bool:
    """Strict lexicographic order on (tier, -covered, score, tie, rse)."""
    if tier_a != tier_b:
        return tier_a < tier_b
    if cov_a != cov_b:
        return cov_a > cov_b
    if score_a != score_b:
        return score_a < score_b
    if tie_a != tie_b:
        return tie_a < tie_b
    return rse_a < rse_b


@njit(cache=True, error_model="numpy")
def place_batch(
    order: np.ndarray,
    item_bytes: np.ndarray,
    copies: np.ndarray,
    item_set: np.ndarray,
    set_indptr: np.ndarray,
    set_indices: np.ndarray,
    present_indptr: np.ndarray,
    present_rse: np.ndarray,
    present_bytes: np.ndarray,
    free: np.ndarray,
    quota: np.ndarray,
    used: np.ndarray,
    capacity: np.ndarray,
    weight: np.ndarray,
    distance: np.ndarray,
    writable: np.ndarray,
    keys: np.ndarray,
    width: int,
) -> tuple[np.ndarray, np.ndarray]:
    n_items = item_bytes.shape[0]
    n_rse = free.shape[0]
    chosen = np.full((n_items, width), -1, np.int32)
    status = np.full(n_items, _OK, np.int8)
    present = np.full(n_rse, -1, np.int64)

    longest = 0
    for s in range(set_indptr.shape[0] - 1):
        longest = max(longest, set_indptr[s + 1] - set_indptr[s])
    c_rse = np.empty(longest, np.int64)
    c_tier = np.empty(longest, np.int8)
    c_cov = np.empty(longest, np.int64)
    c_score = np.empty(longest, np.float64)
    c_tie = np.empty(longest, np.uint64)

    for k in range(n_items):
        i = order[k]
        size = item_bytes[i]
        want = copies[i]
        for p in range(present_indptr[i], present_indptr[i + 1]):
            present[present_rse[p]] = present_bytes[p]

        n_target = 0
        n_space = 0
        n = 0
        s = item_set[i]
        for p in range(set_indptr[s], set_indptr[s + 1]):
            r = set_indices[p]
            if not writable[r]:
                continue
            n_target += 1
            have = present[r]
            covered = min(max(have, 0), size)
            need = size - covered
            if need > free[r]:
                continue
            n_space += 1
            if quota[r] < size:
                continue
            c_rse[n] = r
            c_tier[n] = _FULL if (have >= 0 and have >= size) else (_PARTIAL if have > 0 else _ABSENT)
            c_cov[n] = covered
            c_score[n] = _fill_score(used[r], need, capacity[r], weight[r], distance[r])
            c_tie[n] = _mix64(keys[i] ^ np.uint64(r))
            n += 1

        for p in range(present_indptr[i], present_indptr[i + 1]):
            present[present_rse[p]] = -1

        if n_target < want:
            status[i] = _NO_TARGETS
            continue
        if n_space < want:
            status[i] = _NO_SPACE
            continue
        if n < want:
            status[i] = _NO_QUOTA
            continue

        for j in range(want):
            best = -1
            for q in range(n):
                if c_tier[q] == _TAKEN:
                    continue
                if best < 0 or _before(
                    c_tier[q],
                    c_cov[q],
                    c_score[q],
                    c_tie[q],
                    c_rse[q],
                    c_tier[best],
                    c_cov[best],
                    c_score[best],
                    c_tie[best],
                    c_rse[best],
                ):
                    best = q
            r = c_rse[best]
            need = size - c_cov[best]
            free[r] -= need
            used[r] += need
            quota[r] -= size
            chosen[i, j] = r
            c_tier[best] = _TAKEN
    return chosen, status

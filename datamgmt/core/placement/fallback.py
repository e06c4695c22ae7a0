"""numpy implementation of the placement solver, used when ``DATAMGMT_NUMBA=0``.

Same algorithm and same arguments as ``kernels.place_batch``; the loop over items stays in
Python while each item's candidate RSEs are handled as vectors.  The tests assert that both
return identical arrays.
"""

from __future__ import annotations

import numpy as np

from datamgmt.core.placement import scoring


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
    chosen = np.full((n_items, width), -1, np.int32)
    status = np.full(n_items, scoring.OK, np.int8)
    present = np.full(free.shape[0], -1, np.int64)

    for i in order:
        size = item_bytes[i]
        want = int(copies[i])
        held = present_rse[present_indptr[i] : present_indptr[i + 1]]
        present[held] = present_bytes[present_indptr[i] : present_indptr[i + 1]]

        s = item_set[i]
        rse = set_indices[set_indptr[s] : set_indptr[s + 1]].astype(np.int64)
        rse = rse[writable[rse]]
        have = present[rse]
        present[held] = -1
        n_target = rse.shape[0]
        covered = np.minimum(np.maximum(have, 0), size)
        need = size - covered
        fits = need <= free[rse]
        n_space = int(np.count_nonzero(fits))
        ok = fits & (quota[rse] >= size)
        if n_target < want:
            status[i] = scoring.INSUFFICIENT_TARGET_RSES
            continue
        if n_space < want:
            status[i] = scoring.INSUFFICIENT_SPACE
            continue
        if np.count_nonzero(ok) < want:
            status[i] = scoring.INSUFFICIENT_QUOTA
            continue

        rse, have, covered, need = rse[ok], have[ok], covered[ok], need[ok]
        tier = np.where(have > 0, scoring.TIER_PARTIAL, scoring.TIER_ABSENT)
        tier[(have >= 0) & (have >= size)] = scoring.TIER_FULL
        score = scoring.fill_score(used[rse], need, capacity[rse], weight[rse], distance[rse])
        tie = scoring.mix64(keys[i] ^ rse.astype(np.uint64))
        best = np.lexsort((rse, tie, score, -covered, tier))[:want]

        picked, picked_need = rse[best], need[best]
        free[picked] -= picked_need
        used[picked] += picked_need
        quota[picked] -= size
        chosen[i, :want] = picked
    return chosen, status

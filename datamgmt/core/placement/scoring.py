"""The scoring arithmetic shared, line for line, by the numba kernel and the numpy fallback.

Both functions are plain Python written so that they accept numpy arrays (the fallback,
vectorised over an item's candidate RSEs) and numba scalars (the kernel, which wraps them
with ``njit``).  Keeping one definition is what makes the two paths give bit-identical
results: they perform the same IEEE operations in the same order, with no reductions and
no transcendental functions whose last bit could differ between numba's LLVM and numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: What the two functions below take and give: arrays from the fallback, numpy scalars from the
#: numba kernel (which ignores annotations). numpy's stubs type ndarray-by-scalar arithmetic as
#: Any anyway, so callers give the result its type where they store it.
ScalarOrArray = Any

#: Item outcome codes written by both kernels (see ``solver.Status``).
OK = 0
INSUFFICIENT_TARGET_RSES = 1
INSUFFICIENT_SPACE = 2
INSUFFICIENT_QUOTA = 3

#: Preference tiers, lower wins: the item is fully present, partly present, absent.
TIER_FULL = 0
TIER_PARTIAL = 1
TIER_ABSENT = 2

#: Added to the fill ratio before dividing by the weight, so that weights still order
#: RSEs whose fill is zero (empty, or of unknown capacity).  Small enough not to matter
#: for RSEs with any real fill.
FILL_FLOOR = 1e-9

# splitmix64 constants, as uint64 so numba never promotes the products to float.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)


def mix64(z: ScalarOrArray) -> ScalarOrArray:
    """splitmix64's finaliser: a bijective, well-mixed hash of a uint64 (scalar or array)."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def item_keys(seed: int, n_items: int) -> np.ndarray:
    """One uint64 per item from which its per-RSE tie-break keys are hashed."""
    index = np.arange(n_items, dtype=np.uint64)
    keys: np.ndarray = mix64(np.uint64(seed & 0xFFFFFFFFFFFFFFFF) ^ (index * _GOLDEN))
    return keys


def fill_score(
    used: ScalarOrArray,
    need: ScalarOrArray,
    capacity: ScalarOrArray,
    weight: ScalarOrArray,
    distance: ScalarOrArray,
) -> ScalarOrArray:
    """Score of placing ``need`` new bytes on an RSE; lower is better.

    ``capacity`` is a float, ``inf`` where unknown (the fill term is then 0).  A weight of
    0 gives ``inf``: such an RSE is chosen only when no weighted one is left.
    """
    return ((used + need) / capacity + FILL_FLOOR) / weight + distance

"""The façade of the placement solver: problem and result dataclasses, ``place`` and builders.

``place`` validates and normalises a ``PlacementProblem``, then runs the numba kernel, or the
numpy fallback when the environment variable ``DATAMGMT_NUMBA`` is ``0`` (read at every call,
so tests and operators can switch without re-importing).
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from datamgmt.core.placement import fallback, scoring
from datamgmt.exceptions import (
    InputValidationError,
    InsufficientAccountLimit,
    InsufficientTargetRSEs,
    RSEOverQuota,
)

#: Stands for "unlimited" in the working copies of free space and quota.
UNLIMITED = np.iinfo(np.int64).max


class Status(enum.IntEnum):
    """Outcome of one item; an item that is not OK is placed nowhere (all copies or none)."""

    OK = scoring.OK
    #: Fewer writable candidate RSEs than copies (Rucio's InsufficientTargetRSEs).
    INSUFFICIENT_TARGET_RSES = scoring.INSUFFICIENT_TARGET_RSES
    #: Fewer candidates with room for the missing bytes than copies (Rucio's RSEOverQuota).
    INSUFFICIENT_SPACE = scoring.INSUFFICIENT_SPACE
    #: Fewer candidates with room and account quota for the item than copies
    #: (Rucio's InsufficientAccountLimit).
    INSUFFICIENT_QUOTA = scoring.INSUFFICIENT_QUOTA


_ERRORS = {
    Status.INSUFFICIENT_TARGET_RSES: InsufficientTargetRSEs,
    Status.INSUFFICIENT_SPACE: RSEOverQuota,
    Status.INSUFFICIENT_QUOTA: InsufficientAccountLimit,
}


def _array(value: npt.ArrayLike, dtype: npt.DTypeLike, shape: tuple[int, ...], name: str) -> np.ndarray:
    out = np.ascontiguousarray(value, dtype=dtype)
    if out.shape != shape:
        raise InputValidationError(f"{name} has shape {out.shape}, expected {shape}")
    return out


def _csr(
    rows: npt.ArrayLike, columns: npt.ArrayLike, n_rows: int, n_rse: int, name: str
) -> tuple[np.ndarray, np.ndarray]:
    indptr = np.ascontiguousarray(rows, dtype=np.int64)
    indices = np.ascontiguousarray(columns, dtype=np.int32)
    if (
        indptr.shape != (n_rows + 1,)
        or indptr[0] != 0
        or np.any(np.diff(indptr) < 0)
        or indptr[-1] != indices.shape[0]
    ):
        raise InputValidationError(f"{name}: indptr must rise from 0 to len(indices) over {n_rows} rows")
    if indices.size and (indices.min() < 0 or indices.max() >= n_rse):
        raise InputValidationError(f"{name}: RSE index out of range")
    cells = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(indptr)) * n_rse + indices
    if np.any(np.diff(cells) <= 0) and np.any(np.diff(np.sort(cells)) == 0):  # sorted rows skip the sort
        raise InputValidationError(f"{name}: an RSE appears twice in one row")
    return indptr, indices


#: The default of PlacementProblem's optional arrays, replaced in ``__post_init__``: typed as
#: Any so the fields can be typed as the arrays they always are once the problem exists.
_LEFT_OUT: Any = None


@dataclass(frozen=True, eq=False)
class PlacementProblem:
    """A batch of items to place over ``n_rse`` RSEs, as arrays.

    Per RSE: ``free_bytes`` (negative = unlimited), ``quota_left`` for the rule's account
    (negative = unlimited; an RSE where the account has no limit row should get 0),
    ``weight`` (>= 0, 1.0 without a weight attribute; 0 = last resort), ``write_available``,
    ``distance`` (a finite penalty added to the score, in fill-ratio units) and
    ``capacity`` (total bytes, <= 0 = unknown: the RSE counts as empty).

    Per item (a dataset, a whole DID for grouping ALL, a file for NONE): ``item_bytes``,
    ``copies`` and ``item_set``, the index of its candidate set.  Candidate sets are rows of
    a CSR matrix (``set_indptr``, ``set_indices``: the RSEs an expression resolved to); items
    from rules with the same expression share a row, so 10^5 items over 10^3 RSEs cost
    4 bytes per item plus the distinct sets, instead of a 100 MB boolean matrix.

    Bytes of an item already present on an RSE are CSR rows per item (``present_indptr``,
    ``present_rse``, ``present_bytes``), see ``present_from_triples``.

    The fields are typed as what the solver reads: ``__post_init__`` turns every one into a
    contiguous array of its dtype, filling the ones left out with their defaults.
    """

    free_bytes: np.ndarray
    item_bytes: np.ndarray
    copies: np.ndarray
    quota_left: np.ndarray = _LEFT_OUT
    weight: np.ndarray = _LEFT_OUT
    write_available: np.ndarray = _LEFT_OUT
    distance: np.ndarray = _LEFT_OUT
    capacity: np.ndarray = _LEFT_OUT
    item_set: np.ndarray = _LEFT_OUT
    set_indptr: np.ndarray = _LEFT_OUT
    set_indices: np.ndarray = _LEFT_OUT
    present_indptr: np.ndarray = _LEFT_OUT
    present_rse: np.ndarray = _LEFT_OUT
    present_bytes: np.ndarray = _LEFT_OUT
    seed: int = 0

    def __post_init__(self) -> None:
        free = np.ascontiguousarray(self.free_bytes, dtype=np.int64)
        if free.ndim != 1:
            raise InputValidationError("free_bytes must be one-dimensional")
        n_rse = free.shape[0]
        item_bytes = np.ascontiguousarray(self.item_bytes, dtype=np.int64)
        if item_bytes.ndim != 1:
            raise InputValidationError("item_bytes must be one-dimensional")
        n_items = item_bytes.shape[0]
        rse_shape, item_shape = (n_rse,), (n_items,)

        def per_rse(name: str, dtype: npt.DTypeLike, default: float) -> np.ndarray:
            value = getattr(self, name)
            return _array(np.full(n_rse, default, dtype) if value is None else value, dtype, rse_shape, name)

        fields = {
            "free_bytes": free,
            "item_bytes": item_bytes,
            "copies": _array(self.copies, np.int32, item_shape, "copies"),
            "quota_left": per_rse("quota_left", np.int64, -1),
            "weight": per_rse("weight", np.float64, 1.0),
            "write_available": per_rse("write_available", np.bool_, True),
            "distance": per_rse("distance", np.float64, 0.0),
            "capacity": per_rse("capacity", np.int64, 0),
        }
        if self.set_indptr is None:
            indptr, indices = np.array([0, n_rse]), np.arange(n_rse)
            n_sets = 1
        else:
            indptr, indices = self.set_indptr, self.set_indices
            n_sets = np.asarray(indptr).shape[0] - 1
        fields["set_indptr"], fields["set_indices"] = _csr(indptr, indices, n_sets, n_rse, "candidate sets")
        item_set = np.zeros(n_items, np.int32) if self.item_set is None else self.item_set
        fields["item_set"] = _array(item_set, np.int32, item_shape, "item_set")
        if self.present_indptr is None:
            fields["present_indptr"] = np.zeros(n_items + 1, np.int64)
            fields["present_rse"] = np.zeros(0, np.int32)
            fields["present_bytes"] = np.zeros(0, np.int64)
        else:
            fields["present_indptr"], fields["present_rse"] = _csr(
                self.present_indptr, self.present_rse, n_items, n_rse, "present"
            )
            fields["present_bytes"] = _array(
                self.present_bytes, np.int64, fields["present_rse"].shape, "present_bytes"
            )

        if np.any(fields["copies"] < 0) or np.any(item_bytes < 0) or np.any(fields["present_bytes"] < 0):
            raise InputValidationError("copies and bytes must not be negative")
        if n_items and (fields["item_set"].min() < 0 or fields["item_set"].max() >= n_sets):
            raise InputValidationError("item_set refers to a candidate set that does not exist")
        weight = fields["weight"]
        if not np.all(np.isfinite(weight) & (weight >= 0)) or not np.all(np.isfinite(fields["distance"])):
            raise InputValidationError("weights must be finite and >= 0, distances finite")
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    @property
    def n_rse(self) -> int:
        return int(self.free_bytes.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.item_bytes.shape[0])


@dataclass(frozen=True, eq=False)
class PlacementResult:
    """``chosen``: n_items x max(copies) RSE indices, -1 padded, best choice first; ``status``:
    one ``Status`` code (int8) per item.

    ``free_left`` and ``quota_left`` are the per-RSE figures after the whole batch
    (negative = unlimited, as in the problem).
    """

    chosen: np.ndarray
    status: np.ndarray
    free_left: np.ndarray
    quota_left: np.ndarray
    #: "numba" or "numpy", whichever ran.
    backend: str

    def rses(self, item: int) -> list[int]:
        """The RSE indices chosen for one item, best first."""
        row = self.chosen[item]
        chosen: list[int] = row[row >= 0].tolist()
        return chosen

    def raise_for_item(self, item: int) -> None:
        """Raise the Rucio-named error for an item that could not be placed."""
        status = Status(int(self.status[item]))
        if status is not Status.OK:
            raise _ERRORS[status](f"item {item}: {status.name.lower().replace('_', ' ')}")


def use_numba() -> bool:
    """Whether ``place`` runs the numba kernel; ``DATAMGMT_NUMBA=0`` selects the numpy fallback."""
    return os.environ.get("DATAMGMT_NUMBA", "1").strip().lower() not in ("0", "false", "no", "off")


def _working(values: np.ndarray) -> np.ndarray:
    return np.where(values < 0, UNLIMITED, values)


def _reported(values: np.ndarray, original: np.ndarray) -> np.ndarray:
    return np.where(original < 0, -1, values)


def place(problem: PlacementProblem) -> PlacementResult:
    """Place every item of the batch; see the package docstring for the rule."""
    free = _working(problem.free_bytes)
    quota = _working(problem.quota_left)
    known = (problem.capacity > 0) & (problem.free_bytes >= 0)
    used = np.where(known, np.clip(problem.capacity - problem.free_bytes, 0, None), 0)
    capacity = np.where(known, problem.capacity.astype(np.float64), np.inf)
    # Largest first: a batch packs better when big items pick before small ones fill the gaps.
    order = np.argsort(-problem.item_bytes, kind="stable")
    width = int(problem.copies.max(initial=0))
    args = (
        order,
        problem.item_bytes,
        problem.copies,
        problem.item_set,
        problem.set_indptr,
        problem.set_indices,
        problem.present_indptr,
        problem.present_rse,
        problem.present_bytes,
        free,
        quota,
        used,
        capacity,
        problem.weight,
        problem.distance,
        problem.write_available,
        scoring.item_keys(problem.seed, problem.n_items),
        width,
    )
    if use_numba():
        from datamgmt.core.placement import kernels

        chosen, status = kernels.place_batch(*args)
        backend = "numba"
    else:
        with np.errstate(divide="ignore"):
            chosen, status = fallback.place_batch(*args)
        backend = "numpy"
    return PlacementResult(
        chosen=chosen,
        status=status,
        free_left=_reported(free, problem.free_bytes),
        quota_left=_reported(quota, problem.quota_left),
        backend=backend,
    )


def warm_up() -> None:
    """Load the compiled kernel now: API workers call it before they serve, so the first rule
    that needs a transfer does not wait seconds for numba and its cached kernel to load."""
    place(PlacementProblem(free_bytes=np.array([-1]), item_bytes=np.array([1]), copies=np.array([1])))


def candidate_sets(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR rows (``set_indptr``, ``set_indices``) from an (n_sets x n_rse) boolean matrix."""
    masks = np.asarray(masks, dtype=np.bool_)
    rows, cols = np.nonzero(masks)
    indptr = np.zeros(masks.shape[0] + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=masks.shape[0]), out=indptr[1:])
    return indptr, cols.astype(np.int32)


def present_from_triples(
    n_items: int, item: npt.ArrayLike, rse: npt.ArrayLike, nbytes: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR rows of present bytes from (item, rse, bytes) triples; duplicate pairs are summed."""
    items = np.asarray(item, dtype=np.int64)
    rses = np.asarray(rse, dtype=np.int64)
    weights = np.asarray(nbytes, dtype=np.int64)
    pairs, inverse = np.unique(np.stack([items, rses]), axis=1, return_inverse=True)
    total = np.bincount(inverse.ravel(), weights=weights, minlength=pairs.shape[1]).astype(np.int64)
    indptr = np.zeros(n_items + 1, np.int64)
    np.cumsum(np.bincount(pairs[0], minlength=n_items), out=indptr[1:])
    return indptr, pairs[1].astype(np.int32), total


@dataclass(frozen=True)
class RSEState:
    """One RSE as rule creation sees it; the defaults mean unlimited, unweighted, writable."""

    free_bytes: int = -1
    capacity: int = 0
    quota_left: int = -1
    weight: float = 1.0
    write_available: bool = True
    distance: float = 0.0


def single_rule_problem(
    rses: Sequence[RSEState],
    item_bytes: int,
    copies: int,
    candidates: Sequence[int] | None = None,
    present: Mapping[int, int] | None = None,
    seed: int = 0,
) -> PlacementProblem:
    """A batch of one item, for rule creation and the judge's repair of one rule.

    ``candidates`` are indices into ``rses`` (all of them when None); ``present`` maps an
    RSE index to the bytes of the item already there.
    """
    candidates = range(len(rses)) if candidates is None else candidates
    present = present or {}
    return PlacementProblem(
        free_bytes=np.array([r.free_bytes for r in rses], np.int64),
        capacity=np.array([r.capacity for r in rses], np.int64),
        quota_left=np.array([r.quota_left for r in rses], np.int64),
        weight=np.array([r.weight for r in rses], np.float64),
        write_available=np.array([r.write_available for r in rses], np.bool_),
        distance=np.array([r.distance for r in rses], np.float64),
        item_bytes=np.array([item_bytes], np.int64),
        copies=np.array([copies], np.int32),
        set_indptr=np.array([0, len(candidates)], np.int64),
        set_indices=np.array(list(candidates), np.int32),
        present_indptr=np.array([0, len(present)], np.int64),
        present_rse=np.array(list(present), np.int32),
        present_bytes=np.array(list(present.values()), np.int64),
        seed=seed,
    )

"""Properties of the placement solver on random batches: constraints hold and backends agree."""

from __future__ import annotations

import os
from contextlib import contextmanager

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from datamgmt.core.placement import PlacementProblem, Status, candidate_sets, place, present_from_triples


@contextmanager
def backend(numba: bool):
    old = os.environ.get("DATAMGMT_NUMBA")
    os.environ["DATAMGMT_NUMBA"] = "1" if numba else "0"
    try:
        yield
    finally:
        if old is None:
            del os.environ["DATAMGMT_NUMBA"]
        else:
            os.environ["DATAMGMT_NUMBA"] = old


def random_problem(seed: int, n_rse: int, n_items: int, n_sets: int, tight: bool) -> PlacementProblem:
    """A batch with tight or loose space and quota, unlimited entries, zero weights and replicas."""
    rng = np.random.default_rng(seed)
    capacity = rng.integers(1_000, 10_000, n_rse)
    capacity[rng.random(n_rse) < 0.1] = 0
    free = (capacity * rng.random(n_rse)).astype(np.int64)
    free[rng.random(n_rse) < 0.1] = -1
    quota = rng.integers(0, 20_000, n_rse)
    quota[rng.random(n_rse) < 0.3] = -1
    item_bytes = rng.integers(0, 3_000 if tight else 300, n_items)
    # Equal sizes make exact score ties, which the seeded tie-break must settle alike in both paths.
    item_bytes[rng.random(n_items) < 0.3] = 100
    masks = rng.random((n_sets, n_rse)) < rng.uniform(0.1, 1.0)
    set_indptr, set_indices = candidate_sets(masks)
    n_present = n_items // 2
    present = present_from_triples(
        n_items,
        rng.integers(0, n_items, n_present),
        rng.integers(0, n_rse, n_present),
        rng.integers(0, 400, n_present),
    )
    return PlacementProblem(
        free_bytes=free,
        capacity=capacity,
        quota_left=quota,
        weight=rng.choice([0.0, 0.5, 1.0, 1.0, 3.0], n_rse),
        write_available=rng.random(n_rse) < 0.9,
        distance=np.where(rng.random(n_rse) < 0.5, 0.0, rng.random(n_rse)),
        item_bytes=item_bytes,
        copies=rng.integers(0, 4, n_items),
        item_set=rng.integers(0, n_sets, n_items),
        set_indptr=set_indptr,
        set_indices=set_indices,
        present_indptr=present[0],
        present_rse=present[1],
        present_bytes=present[2],
        seed=seed,
    )


problems = st.builds(
    random_problem,
    seed=st.integers(0, 2**63),
    n_rse=st.integers(1, 40),
    n_items=st.integers(0, 120),
    n_sets=st.integers(1, 6),
    tight=st.booleans(),
)


def check_invariants(problem: PlacementProblem, result) -> None:
    consumed = np.zeros(problem.n_rse, np.int64)
    charged = np.zeros(problem.n_rse, np.int64)
    for i in range(problem.n_items):
        row = result.chosen[i]
        if result.status[i] != Status.OK:
            assert np.all(row == -1)
            continue
        picked = row[row >= 0]
        assert picked.shape[0] == problem.copies[i]
        assert np.all(row[problem.copies[i] :] == -1)
        assert len(set(picked.tolist())) == picked.shape[0], "copies must land on distinct RSEs"
        allowed = problem.set_indices[
            problem.set_indptr[problem.item_set[i]] : problem.set_indptr[problem.item_set[i] + 1]
        ]
        assert np.isin(picked, allowed).all()
        assert problem.write_available[picked].all()
        here = dict(
            zip(
                problem.present_rse[problem.present_indptr[i] : problem.present_indptr[i + 1]].tolist(),
                problem.present_bytes[problem.present_indptr[i] : problem.present_indptr[i + 1]].tolist(),
                strict=True,
            )
        )
        for r in picked.tolist():
            consumed[r] += problem.item_bytes[i] - min(here.get(r, 0), problem.item_bytes[i])
            charged[r] += problem.item_bytes[i]
    limited = problem.free_bytes >= 0
    assert np.all(consumed[limited] <= problem.free_bytes[limited]), "an RSE was overfilled"
    assert np.array_equal(result.free_left[limited], problem.free_bytes[limited] - consumed[limited])
    limited = problem.quota_left >= 0
    assert np.all(charged[limited] <= problem.quota_left[limited]), "a quota was overdrawn"
    assert np.array_equal(result.quota_left[limited], problem.quota_left[limited] - charged[limited])


@settings(max_examples=150, deadline=None)
@given(problems)
def test_numba_and_numpy_agree_and_respect_constraints(problem):
    with backend(numba=True):
        fast = place(problem)
    with backend(numba=False):
        slow = place(problem)
    assert (fast.backend, slow.backend) == ("numba", "numpy")
    assert np.array_equal(fast.chosen, slow.chosen)
    assert np.array_equal(fast.status, slow.status)
    assert np.array_equal(fast.free_left, slow.free_left)
    assert np.array_equal(fast.quota_left, slow.quota_left)
    check_invariants(problem, fast)


@settings(max_examples=50, deadline=None)
@given(problems)
def test_same_seed_same_placement(problem):
    first, second = place(problem), place(problem)
    assert np.array_equal(first.chosen, second.chosen)
    assert np.array_equal(first.status, second.status)


@settings(max_examples=50, deadline=None)
@given(problems)
def test_failures_only_when_the_constraint_really_binds(problem):
    """An item reported short of targets has fewer writable candidates than copies; an item
    placed or short of space/quota had enough of them."""
    result = place(problem)
    for i in range(problem.n_items):
        s = problem.item_set[i]
        targets = problem.set_indices[problem.set_indptr[s] : problem.set_indptr[s + 1]]
        enough = np.count_nonzero(problem.write_available[targets]) >= problem.copies[i]
        assert enough == (result.status[i] != Status.INSUFFICIENT_TARGET_RSES)

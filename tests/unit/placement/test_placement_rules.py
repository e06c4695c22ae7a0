"""The placement rule on small hand-made cases: preference, balance, weights, errors."""

from __future__ import annotations

import numpy as np
import pytest

from datamgmt.core.placement import (
    PlacementProblem,
    RSEState,
    Status,
    place,
    single_rule_problem,
)
from datamgmt.exceptions import (
    InputValidationError,
    InsufficientAccountLimit,
    InsufficientTargetRSEs,
    RSEOverQuota,
)

TB = 10**12


@pytest.fixture(params=["1", "0"], ids=["numba", "numpy"])
def both_backends(request, monkeypatch):
    monkeypatch.setenv("DATAMGMT_NUMBA", request.param)
    return "numba" if request.param == "1" else "numpy"


def equal_rses(n: int, free: int = 100 * TB, capacity: int = 100 * TB, **kw) -> list[RSEState]:
    return [RSEState(free_bytes=free, capacity=capacity, **kw) for _ in range(n)]


def test_env_selects_backend(both_backends):
    assert place(single_rule_problem(equal_rses(2), TB, 1)).backend == both_backends


def test_fully_present_beats_emptier_rse(both_backends):
    rses = [RSEState(free_bytes=1 * TB, capacity=100 * TB), RSEState(free_bytes=100 * TB, capacity=100 * TB)]
    result = place(single_rule_problem(rses, 5 * TB, 1, present={0: 5 * TB}))
    assert result.rses(0) == [0]
    assert result.free_left.tolist() == [1 * TB, 100 * TB], "present data costs no space"
    assert result.quota_left.tolist() == [-1, -1]


def test_order_full_then_most_bytes_then_fill(both_backends):
    rses = [
        RSEState(free_bytes=90 * TB, capacity=100 * TB),
        RSEState(free_bytes=10 * TB, capacity=100 * TB),
        RSEState(free_bytes=20 * TB, capacity=100 * TB),
        RSEState(free_bytes=100 * TB, capacity=100 * TB),
    ]
    result = place(single_rule_problem(rses, 4 * TB, 4, present={1: 1 * TB, 2: 3 * TB, 0: 4 * TB}))
    assert result.rses(0) == [0, 2, 1, 3]


def test_rucio_dataset_reuse_case(both_backends):
    """Second rule T1|T2 copies=2 on a dataset already on two T1 RSEs reuses them (Rucio's placement semantics)."""
    result = place(single_rule_problem(equal_rses(4), TB, 2, present={0: TB, 3: TB}))
    assert sorted(result.rses(0)) == [0, 3]


def test_balances_fill_ratio_across_a_batch(both_backends):
    capacity = np.full(5, 100 * TB)
    free = np.array([100, 80, 60, 40, 20]) * TB
    problem = PlacementProblem(
        free_bytes=free, capacity=capacity, item_bytes=np.full(100, TB), copies=np.ones(100, np.int32)
    )
    result = place(problem)
    fill = (capacity - result.free_left) / capacity
    assert np.all(result.status == Status.OK)
    # Water-filling: the three emptiest rise to a common level of 1.6/3, the fuller two are untouched.
    assert np.all(np.abs(fill[:3] - 1.6 / 3) <= 0.01)
    assert fill[3:].tolist() == [0.6, 0.8]


def test_batch_never_overfills(both_backends):
    """Each RSE has room for 3 items; the batch of 10 places 6 and refuses the rest for space."""
    problem = PlacementProblem(
        free_bytes=[3 * TB, 3 * TB],
        capacity=[10 * TB, 10 * TB],
        item_bytes=np.full(10, TB),
        copies=np.ones(10, np.int32),
    )
    result = place(problem)
    assert np.count_nonzero(result.status == Status.OK) == 6
    assert np.all(result.status[result.status != Status.OK] == Status.INSUFFICIENT_SPACE)
    assert result.free_left.tolist() == [0, 0]


def test_quota_is_charged_in_full_and_never_overdrawn(both_backends):
    rses = [RSEState(quota_left=5 * TB), RSEState(quota_left=-1)]
    problem = PlacementProblem(
        free_bytes=[-1, -1],
        quota_left=[5 * TB, -1],
        item_bytes=np.full(8, 2 * TB),
        copies=np.full(8, 2, np.int32),
        present_indptr=np.r_[0, np.ones(8, np.int64)].cumsum(),
        present_rse=np.zeros(8, np.int32),
        present_bytes=np.full(8, 2 * TB),
    )
    result = place(problem)
    assert np.count_nonzero(result.status == Status.OK) == 2
    assert np.all(result.status[2:] == Status.INSUFFICIENT_QUOTA)
    assert result.quota_left.tolist() == [1 * TB, -1]
    with pytest.raises(InsufficientAccountLimit):
        result.raise_for_item(5)
    assert place(single_rule_problem(rses, 5 * TB, 1)).rses(0) in ([0], [1])


def test_insufficient_targets_counts_only_writable_candidates(both_backends):
    rses = equal_rses(3)[:2] + [RSEState(write_available=False)]
    result = place(single_rule_problem(rses, TB, 2, candidates=[1, 2]))
    assert result.status[0] == Status.INSUFFICIENT_TARGET_RSES
    assert result.rses(0) == []
    with pytest.raises(InsufficientTargetRSEs):
        result.raise_for_item(0)
    assert place(single_rule_problem(rses, TB, 2, candidates=[0, 1, 2])).rses(0) in ([0, 1], [1, 0])


def test_insufficient_space_maps_to_rse_over_quota(both_backends):
    result = place(single_rule_problem(equal_rses(2, free=TB), 2 * TB, 1))
    assert result.status[0] == Status.INSUFFICIENT_SPACE
    with pytest.raises(RSEOverQuota):
        result.raise_for_item(0)
    place(single_rule_problem(equal_rses(2), TB, 1)).raise_for_item(0)


def test_failed_item_takes_nothing(both_backends):
    """An item that gets only one of its two copies is not placed at all."""
    problem = PlacementProblem(
        free_bytes=[5 * TB, TB], capacity=[10 * TB, 10 * TB], item_bytes=[2 * TB, TB], copies=[2, 1]
    )
    result = place(problem)
    assert result.status.tolist() == [Status.INSUFFICIENT_SPACE, Status.OK]
    assert result.free_left.tolist() == [4 * TB, TB]


def test_weight_attribute_rucio_case(both_backends):
    """fakeweight = 10, 0, 0, 0 with copies=2: R1 is always chosen (Rucio's placement semantics)."""
    weight_rses = [RSEState(weight=w) for w in (10.0, 0.0, 0.0, 0.0)]
    for seed in range(20):
        chosen = place(single_rule_problem(weight_rses, TB, 2, seed=seed)).rses(0)
        assert chosen[0] == 0 and chosen[1] in (1, 2, 3)


def test_weights_bias_a_batch_proportionally(both_backends):
    capacity = np.full(2, 1000 * TB)
    problem = PlacementProblem(
        free_bytes=capacity,
        capacity=capacity,
        weight=[3.0, 1.0],
        item_bytes=np.full(400, TB),
        copies=np.ones(400, np.int32),
    )
    result = place(problem)
    placed = (capacity - result.free_left) // TB
    assert placed.sum() == 400
    assert placed[0] == 300


def test_distance_penalty_steers_between_equal_rses(both_backends):
    rses = [
        RSEState(free_bytes=TB, capacity=10 * TB, distance=0.5),
        RSEState(free_bytes=TB, capacity=10 * TB),
    ]
    assert place(single_rule_problem(rses, TB, 1)).rses(0) == [1]


def test_ties_broken_by_seed(both_backends):
    """Among identical RSEs the seed decides, and not always alike."""
    rses = equal_rses(50, free=-1, capacity=0)
    picks = {tuple(place(single_rule_problem(rses, TB, 3, seed=seed)).rses(0)) for seed in range(10)}
    assert len(picks) > 1
    assert place(single_rule_problem(rses, TB, 3, seed=7)).rses(0) == place(
        single_rule_problem(rses, TB, 3, seed=7)
    ).rses(0)


def test_unlimited_rses_spread_within_a_batch(both_backends):
    """Without capacities a batch still spreads over the RSEs: each item draws its own tie order."""
    problem = PlacementProblem(
        free_bytes=np.full(10, -1), item_bytes=np.full(200, TB), copies=np.ones(200, np.int32), seed=1
    )
    assert len(set(place(problem).chosen[:, 0].tolist())) == 10


def test_zero_copies_place_nothing(both_backends):
    result = place(PlacementProblem(free_bytes=[TB], item_bytes=[TB], copies=[0]))
    assert result.chosen.shape == (1, 0)
    assert result.status.tolist() == [Status.OK]


@pytest.mark.parametrize(
    "change",
    [
        {"copies": [-1]},
        {"weight": [np.nan]},
        {"weight": [-1.0]},
        {"distance": [np.inf]},
        {"free_bytes": [[1]]},
        {"item_set": [1]},
        {"set_indptr": [0, 2], "set_indices": [0, 0]},
        {"set_indptr": [0, 1], "set_indices": [3]},
        {"present_indptr": [0, 1], "present_rse": [0], "present_bytes": [-5]},
    ],
)
def test_invalid_problems_are_refused(change):
    args = {"free_bytes": [TB], "item_bytes": [TB], "copies": [1]} | change
    with pytest.raises(InputValidationError):
        PlacementProblem(**args)

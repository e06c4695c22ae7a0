"""Benchmark of the placement solver: a batch of datasets over many RSEs, numba against numpy.

Prints ``name size seconds rate peak_rss`` lines (size = items, rate = items/s, peak_rss in
MiB) and the fill-ratio spread over the RSEs before and after placement.  The numba cache is
pointed at a fresh directory so that the first call really includes JIT compilation.

    python bench/placement.py            # 10^5 datasets over 10^3 RSEs
    python bench/placement.py --quick    # 10^3 datasets over 100 RSEs, for CI
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="placement-bench-numba-")

import numpy as np  # noqa: E402

from datamgmt.core.placement import (  # noqa: E402
    PlacementProblem,
    PlacementResult,
    Status,
    candidate_sets,
    place,
    present_from_triples,
)

TB = 10**12


def expression_sets(
    rng: np.random.Generator, n_expressions: int, n_rse: int
) -> tuple[np.ndarray, np.ndarray]:
    """CSR candidate sets, each drawing 5-20 % of the RSEs; built in chunks to bound memory."""
    rows, entries = [np.zeros(1, np.int64)], []
    for first in range(0, n_expressions, 1024):
        n = min(1024, n_expressions - first)
        indptr, indices = candidate_sets(rng.random((n, n_rse)) < rng.uniform(0.05, 0.20, (n, 1)))
        rows.append(indptr[1:] + sum(e.shape[0] for e in entries))
        entries.append(indices)
    return np.concatenate(rows), np.concatenate(entries)


def make_problem(n_items: int, n_rse: int, n_expressions: int, load: float, seed: int) -> PlacementProblem:
    """Log-uniform capacities filled 20-80 %, expressions selecting 5-20 % of the RSEs,
    log-normal dataset sizes whose copies total ``load`` times the free space, copies 1-3,
    a tenth of the datasets already (partly) on one RSE of their expression."""
    rng = np.random.default_rng(seed)
    capacity = np.exp(rng.uniform(np.log(500 * TB), np.log(20_000 * TB), n_rse)).astype(np.int64)
    free = (capacity * rng.uniform(0.2, 0.8, n_rse)).astype(np.int64)
    quota = np.where(rng.random(n_rse) < 0.8, -1, capacity)
    set_indptr, set_indices = expression_sets(rng, n_expressions, n_rse)
    item_set = rng.integers(0, n_expressions, n_items)
    copies = rng.integers(1, 4, n_items)
    sizes = rng.lognormal(0.0, 1.5, n_items)
    sizes *= load * free.sum() / (sizes * copies).sum()
    item_bytes = sizes.astype(np.int64)

    holders = rng.choice(n_items, n_items // 10, replace=False)
    starts, ends = set_indptr[item_set[holders]], set_indptr[item_set[holders] + 1]
    keep = ends > starts
    holders, starts, ends = holders[keep], starts[keep], ends[keep]
    where = set_indices[starts + (rng.random(holders.shape[0]) * (ends - starts)).astype(np.int64)]
    held = item_bytes[holders] * np.where(
        rng.random(holders.shape[0]) < 0.5, 1.0, rng.random(holders.shape[0])
    )
    present = present_from_triples(n_items, holders, where, held.astype(np.int64))
    return PlacementProblem(
        free_bytes=free,
        capacity=capacity,
        quota_left=quota,
        item_bytes=item_bytes,
        copies=copies,
        item_set=item_set,
        set_indptr=set_indptr,
        set_indices=set_indices,
        present_indptr=present[0],
        present_rse=present[1],
        present_bytes=present[2],
        seed=seed,
    )


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(name: str, problem: PlacementProblem, numba: bool, repeat: int = 1) -> PlacementResult:
    """Run ``place`` ``repeat`` times and print the best time."""
    os.environ["DATAMGMT_NUMBA"] = "1" if numba else "0"
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = place(problem)
        best = min(best, time.perf_counter() - start)
    print(f"{name} {problem.n_items} {best:.3f} {problem.n_items / best:.0f} {peak_rss_mib():.0f}")
    return result


def fill_spread(label: str, problem: PlacementProblem, free: np.ndarray) -> None:
    fill = (problem.capacity - free) / problem.capacity
    print(
        f"# fill {label}: max-min {fill.max() - fill.min():.4f} std {fill.std():.4f} mean {fill.mean():.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10^3 datasets over 100 RSEs")
    parser.add_argument("--items", type=int, help="datasets in the batch (default 10^5)")
    parser.add_argument("--rses", type=int, help="RSEs (default 10^3)")
    parser.add_argument(
        "--expressions",
        type=int,
        help="distinct RSE expressions in the batch (default: one per 100 datasets)",
    )
    parser.add_argument(
        "--load",
        type=float,
        default=0.25,
        help="bytes of all copies as a fraction of the free space (default 0.25)",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    n_items = args.items or (1_000 if args.quick else 100_000)
    n_rse = args.rses or (100 if args.quick else 1_000)
    n_expressions = args.expressions or max(1, n_items // 100)

    start = time.perf_counter()
    problem = make_problem(n_items, n_rse, n_expressions, args.load, args.seed)
    print(
        f"# {n_items} datasets, {n_rse} RSEs, {n_expressions} expressions, load {args.load}, "
        f"{problem.set_indices.shape[0]} candidate entries, {problem.present_rse.shape[0]} present entries, "
        f"built in {time.perf_counter() - start:.2f} s"
    )
    print("name size seconds rate peak_rss")
    cold = timed("placement_numba_with_jit", problem, numba=True)
    warm = timed("placement_numba", problem, numba=True, repeat=3)
    slow = timed("placement_numpy", problem, numba=False)
    assert np.array_equal(cold.chosen, warm.chosen) and np.array_equal(warm.chosen, slow.chosen)
    assert np.array_equal(warm.status, slow.status)
    counts = np.bincount(warm.status, minlength=len(Status))
    print("# status " + " ".join(f"{s.name}={counts[s]}" for s in Status))
    fill_spread("before", problem, problem.free_bytes)
    fill_spread("after", problem, warm.free_left)


if __name__ == "__main__":
    main()

"""Benchmark of RSE expressions: 1,000 RSEs with 20 attributes each, 10,000 mixed expressions.

Prints ``name size seconds rate peak_rss`` lines (size = expressions, rate = expressions/s,
peak_rss in MiB): parsing alone, then resolution with a cold cache (every distinct
expression evaluated against the catalogue) and with a warm one (every answer cached), on
the memory backend and, with ``--redis URL``, on Redis.

    python bench/expressions.py                 # 1,000 RSEs, 10,000 expressions, SQLite
    python bench/expressions.py --quick         # 100 RSEs, 1,000 expressions, for CI
    python bench/expressions.py --db-url postgresql+psycopg://... --redis redis://127.0.0.1:6379/15
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
import uuid
from pathlib import Path

import redis
from sqlalchemy import create_engine, insert
from sqlalchemy.orm import Session

from datamgmt.core import expression
from datamgmt.core.cache import make_region
from datamgmt.core.db.constants import RSEType
from datamgmt.core.db.migrate import upgrade
from datamgmt.core.db.models import RSE, RSEAttribute, RSELimit, RSEUsage
from datamgmt.core.db.types import new_id
from datamgmt.exceptions import InvalidRSEExpression

TB = 10**12
COUNTRIES = ["at", "be", "ch", "cz", "de", "es", "fr", "it", "nl", "pl", "pt", "se", "uk", "us", "ca", "jp"]
CLOUDS = [f"CLOUD{i}" for i in range(12)]
TAGS = ["T0", "T1", "T2", "T3", "SCRATCH", "LOCALGROUP", "PROD", "TAPE_BACKED"]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(name: str, size: int, seconds: float) -> None:
    print(f"{name} {size} {seconds:.3f} {size / seconds:.1f} {peak_rss_mib():.1f}", flush=True)


def attributes_of(rng: random.Random, name: str) -> dict[str, str]:
    """Twenty attributes: eight boolean tags, and twelve text or numeric values."""
    attributes = {tag: rng.choice(["true", "false"]) for tag in TAGS}
    attributes.update(
        country=rng.choice(COUNTRIES),
        cloud=rng.choice(CLOUDS),
        site=f"SITE{rng.randrange(300)}",
        tier=str(rng.randrange(4)),
        weight=f"{rng.uniform(0, 1):.3f}",
        bandwidth=str(rng.randrange(1, 100)),
        latency=f"{rng.uniform(1, 300):.1f}",
        quota_tb=str(rng.randrange(10, 5000)),
        fts=f"https://fts{rng.randrange(3)}.example.org:8446",
        vo=rng.choice(["atlas", "cms", "lhcb"]),
        spacetoken=rng.choice(["DATADISK", "SCRATCHDISK", "MCTAPE"]),
        region_code=rng.choice(["EU", "NA", "AS"]),
    )
    return attributes


def build_catalogue(url: str, n_rse: int, seed: int) -> list[str]:
    """Insert the RSEs, their attributes, usage and limits in bulk; returns the RSE names."""
    rng = random.Random(seed)
    names = [f"SITE{i:04d}_{rng.choice(['DATADISK', 'SCRATCHDISK', 'TAPE'])}" for i in range(n_rse)]
    rses, attributes, usage, limits = [], [], [], []
    for name in names:
        rse_id = new_id()
        rses.append(
            {
                "id": rse_id,
                "rse": name,
                "rse_type": RSEType.TAPE if name.endswith("TAPE") else RSEType.DISK,
                "availability_write": rng.random() > 0.05,
            }
        )
        attributes.append({"rse_id": rse_id, "key": name, "value": "true"})
        attributes.extend(
            {"rse_id": rse_id, "key": k, "value": v} for k, v in attributes_of(rng, name).items()
        )
        usage.append(
            {
                "rse_id": rse_id,
                "source": "storage",
                "used": rng.randrange(TB),
                "free": rng.randrange(500 * TB),
            }
        )
        limits.append({"rse_id": rse_id, "name": "MinFreeSpace", "value": 10 * TB})
    engine = create_engine(url)
    with Session(engine) as session, session.begin():
        for model, rows in ((RSE, rses), (RSEAttribute, attributes), (RSEUsage, usage), (RSELimit, limits)):
            session.execute(insert(model), rows)
    engine.dispose()
    return names


def mixed_expressions(rng: random.Random, names: list[str], count: int) -> list[str]:
    """Names, tags, equalities, numeric bounds, differences and nesting, as rules use them."""

    def term() -> str:
        return rng.choice(
            [
                lambda: rng.choice(names),
                lambda: rng.choice(TAGS),
                lambda: f"country={rng.choice(COUNTRIES)}",
                lambda: f"cloud={rng.choice(CLOUDS)}",
                lambda: f"tier<{rng.randrange(1, 4)}",
                lambda: f"weight>={rng.uniform(0, 1):.2f}",
                lambda: f"bandwidth>{rng.randrange(100)}",
                lambda: f"freespace>{rng.randrange(400)}",
                lambda: f"vo!={rng.choice(['atlas', 'cms', 'lhcb'])}",
                lambda: f"rse_type={rng.choice(['DISK', 'TAPE'])}",
                lambda: "*",
            ]
        )()

    def expr(depth: int) -> str:
        text = term()
        for _ in range(rng.randrange(0, 3)):
            right = f"({expr(depth + 1)})" if depth < 2 and rng.random() < 0.3 else term()
            text += rng.choice("|&\\") + right
        return text

    return [expr(0) for _ in range(count)]


def resolve_all(session: Session, expressions: list[str]) -> int:
    """Resolve every expression; empty results are answers too. Returns how many were empty."""
    empty = 0
    for text in expressions:
        try:
            expression.parse_expression(session, text)
        except InvalidRSEExpression:
            empty += 1
        session.rollback()  # as each API request would: one transaction per call
    return empty


def timed_phases(label: str, session: Session, expressions: list[str]) -> None:
    """Cold: no result, snapshot or parse tree cached yet (the first call loads the snapshot)."""
    expression.invalidate_cache()
    expression.parse_tree.cache_clear()
    start = time.perf_counter()
    empty = resolve_all(session, expressions)
    report(f"resolve_cold_{label}", len(expressions), time.perf_counter() - start)
    start = time.perf_counter()
    resolve_all(session, expressions)
    report(f"resolve_warm_{label}", len(expressions), time.perf_counter() - start)
    print(
        f"# {label}: {len(set(expressions))} distinct expressions, {empty} resolved to an empty set",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100 RSEs and 1,000 expressions")
    parser.add_argument("--rses", type=int, default=None)
    parser.add_argument("--expressions", type=int, default=None)
    parser.add_argument("--db-url", default=None, help="an empty database (default: a temporary SQLite file)")
    parser.add_argument(
        "--redis", default=None, help="also measure on this Redis, e.g. redis://127.0.0.1:6379/15"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    n_rse = args.rses or (100 if args.quick else 1000)
    n_expr = args.expressions or (1000 if args.quick else 10_000)

    url = args.db_url or f"sqlite:///{Path(tempfile.mkdtemp(prefix='expr-bench-')) / 'bench.db'}"
    upgrade(url)
    start = time.perf_counter()
    names = build_catalogue(url, n_rse, args.seed)
    report("catalogue_rses", n_rse, time.perf_counter() - start)
    expressions = mixed_expressions(random.Random(args.seed), names, n_expr)

    expression.parse_tree.cache_clear()
    start = time.perf_counter()
    for text in expressions:
        expression.parse_tree(text)
    report("parse", n_expr, time.perf_counter() - start)

    engine = create_engine(url)
    with Session(engine) as session:
        expression.set_cache_region(make_region("rse_expression", backend="memory", expiration_time=600))
        timed_phases("memory", session, expressions)
        if args.redis:
            prefix = f"bench-{uuid.uuid4().hex[:8]}"
            expression.set_cache_region(
                make_region("rse_expression", backend="redis", url=args.redis, prefix=prefix)
            )
            try:
                timed_phases("redis", session, expressions)
            finally:
                client = redis.Redis.from_url(args.redis)
                for key in client.scan_iter(f"{prefix}:*"):
                    client.delete(key)
    engine.dispose()


if __name__ == "__main__":
    main()

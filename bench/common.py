"""Shared helpers for the benchmarks: a fresh catalogue and the result line format."""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
from pathlib import Path


def arguments(description: str, sizes: dict[str, int], quick: dict[str, int]) -> argparse.Namespace:
    """``--quick`` swaps in small sizes; ``--db`` points at PostgreSQL instead of a temp SQLite."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small sizes for CI")
    parser.add_argument("--db", default=os.environ.get("DATAMGMT_BENCH_DB_URL"), help="catalogue URL")
    for name, value in sizes.items():
        parser.add_argument(f"--{name}", type=int, default=None, help=f"default {value}")
    args = parser.parse_args()
    for name, value in sizes.items():
        if getattr(args, name) is None:
            setattr(args, name, quick[name] if args.quick else value)
    return args


def fresh_catalogue(url: str | None) -> str:
    """An empty, migrated catalogue; returns its URL."""
    from sqlalchemy import create_engine, text

    from datamgmt.config import reset_config
    from datamgmt.core.db.migrate import upgrade
    from datamgmt.core.db.session import dispose_engines

    if url is None:
        url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='datamgmt-bench-')) / 'catalogue.db'}"
    elif url.startswith("postgresql"):
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    os.environ["DATAMGMT_DATABASE_URL"] = url
    reset_config()
    dispose_engines()
    upgrade(url)
    return url


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(name: str, size: int, seconds: float) -> None:
    """One result line: name size seconds rate peak_rss."""
    rate = size / seconds if seconds > 0 else float("inf")
    print(f"{name} {size} {seconds:.3f} {rate:.0f}/s {peak_rss_mib():.0f}MiB", flush=True)

"""REST API throughput under gunicorn: ``GET /dids/{s}/{n}`` and streaming ``POST /replicas/list``.

Prints ``name size seconds rate peak_rss`` lines: requests/s for the DID lookups and
files/s for the replica stream of one dataset of ``--files`` files (peak_rss in MiB of
the largest gunicorn process).  ``--quick`` uses CI sizes.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from datamgmt.core.bootstrap import bootstrap
from datamgmt.core.db.migrate import upgrade
from datamgmt.core.db.session import transaction
from datamgmt.core.did import add_collection
from datamgmt.core.did_content import attach
from datamgmt.core.replica import add_replicas
from datamgmt.core.rse import add_protocol, add_rse
from datamgmt.core.scope import add_scope

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-password"


def populate(url: str, files: int) -> None:
    upgrade(url)
    with transaction(url) as session:
        bootstrap(session, "root", PASSWORD, "21.T99999")
        add_rse(session, "BENCH")
        add_protocol(session, "BENCH", {"scheme": "file", "hostname": "localhost", "prefix": "/bench"})
        add_scope(session, "bench", "root")
        add_collection(session, "bench", "ds", "DATASET", "root")
    for start in range(0, files, 20000):
        batch = [
            {"scope": "bench", "name": f"file{i:07d}", "bytes": 1000 + i, "adler32": "0cc737eb"}
            for i in range(start, min(files, start + 20000))
        ]
        with transaction(url) as session:
            add_replicas(session, "BENCH", batch, "root")
            attach(session, "bench", "ds", [{"scope": f["scope"], "name": f["name"]} for f in batch])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise SystemExit("gunicorn exited early")
        try:
            requests.get(f"{base}/ping", timeout=5)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit("gunicorn did not start")


def bench_gets(base: str, token: str, count: int, threads: int, files: int) -> tuple[float, float]:
    def worker(indices: range) -> None:
        with requests.Session() as http:
            http.headers["X-Rucio-Auth-Token"] = token
            for i in indices:
                response = http.get(f"{base}/dids/bench/file{i % files:07d}")
                response.raise_for_status()

    per_thread = count // threads
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, [range(t * per_thread, (t + 1) * per_thread) for t in range(threads)]))
    seconds = time.perf_counter() - started
    return seconds, per_thread * threads / seconds


def bench_stream(base: str, token: str, files: int) -> tuple[float, float]:
    started = time.perf_counter()
    response = requests.post(
        f"{base}/replicas/list",
        data='{"dids": [{"scope": "bench", "name": "ds"}]}',
        headers={"X-Rucio-Auth-Token": token},
        stream=True,
    )
    response.raise_for_status()
    lines = sum(1 for line in response.iter_lines() if line)
    seconds = time.perf_counter() - started
    if lines != files:
        raise SystemExit(f"expected {files} lines, got {lines}")
    return seconds, lines / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="CI sizes")
    parser.add_argument("--files", type=int, default=None, help="files in the listed dataset (default 10^5)")
    parser.add_argument("--requests", type=int, default=None, help="GET requests (default 5000)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    args = parser.parse_args()
    files = args.files or (2000 if args.quick else 100_000)
    count = args.requests or (500 if args.quick else 5000)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        populate(url, files)
        port = free_port()
        env = {**os.environ, "DATAMGMT_DATABASE_URL": url}
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(ROOT / "etc" / "gunicorn.conf.py"),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(args.workers),
                "--access-logfile",
                "/dev/null",
                "datamgmt.api.app:create_app()",
            ],
            env=env,
            cwd=ROOT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base, process)
            login = requests.get(
                f"{base}/auth/userpass",
                headers={"X-Rucio-Account": "root", "X-Rucio-Username": "root", "X-Rucio-Password": PASSWORD},
            )
            token = login.headers["X-Rucio-Auth-Token"]
            get_seconds, get_rate = bench_gets(base, token, count, args.threads, files)
            stream_seconds, stream_rate = bench_stream(base, token, files)
        finally:
            process.terminate()
            process.wait(timeout=30)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print("name size seconds rate peak_rss")
        print(f"api_get_did {count} {get_seconds:.3f} {get_rate:.1f} {peak:.0f}")
        print(f"api_replicas_list_stream {files} {stream_seconds:.3f} {stream_rate:.1f} {peak:.0f}")


if __name__ == "__main__":
    main()

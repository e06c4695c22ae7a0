"""Put/get throughput of each storage protocol against real servers on 127.0.0.1.

Writes N files (default 1 GiB in 1,000 files) through posix, root (XRootD), davs (XrdHttp over
TLS) and s3 (boto3 against moto), reads them back, and prints one line per phase::

    name size seconds rate peak_rss

``size`` is bytes moved, ``rate`` MiB/s and ``peak_rss`` the process's peak resident set in MiB
(monotone over the run). ``cp-reference`` is ``cp -r`` of the same files on the same disk, the
ceiling for the posix protocol. Servers come from ``--env-file`` (an ``endpoints.env`` of
tests/servers/start-storage-endpoints.sh) or are started on free ports and stopped afterwards.

    python bench/storage.py --quick            # 20 MiB in 20 files
    python bench/storage.py --total-mib 256 --files 256
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from datamgmt.rse.protocols import Protocol, create_protocol

SERVERS = Path(__file__).resolve().parents[1] / "tests" / "servers"
BUCKET = "datamgmt-bench"
MIB = 1024 * 1024


def report(name: str, size: int, seconds: float) -> None:
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{name} {size} {seconds:.3f} {size / MIB / seconds:.1f}MiB/s {peak_rss_mib:.0f}MiB", flush=True)


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def read_env_file(path: Path) -> dict[str, str]:
    out = subprocess.run(
        ["bash", "-c", f'set -a; . "{path}"; env -0'], capture_output=True, text=True, check=True
    ).stdout
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)


@contextmanager
def started_endpoints() -> Iterator[dict[str, str]]:
    """XRootD and moto on free ports under a fresh /tmp directory, stopped on exit."""
    base = tempfile.mkdtemp(prefix="datamgmt-bench-storage-", dir="/tmp")
    os.chmod(base, 0o755)
    sockets = [socket.create_server(("127.0.0.1", 0)) for _ in range(3)]
    ports = [str(sock.getsockname()[1]) for sock in sockets]
    for sock in sockets:
        sock.close()
    env = dict(
        os.environ,
        STORAGE_BASE=base,
        ENDPOINTS="xrootd s3",
        S3_BUCKETS=BUCKET,
        STORAGE_VENV=os.environ.get("STORAGE_VENV", "/tmp/datamgmt-storage-venv"),
        XROOTD_PORT=ports[0],
        XRDHTTP_PORT=ports[1],
        S3_PORT=ports[2],
    )
    subprocess.run(
        ["bash", str(SERVERS / "start-storage-endpoints.sh")], env=env, check=True, stdout=subprocess.DEVNULL
    )
    try:
        yield read_env_file(Path(base) / "endpoints.env")
    finally:
        subprocess.run(
            ["bash", str(SERVERS / "stop-storage-endpoints.sh"), "--purge"],
            env=env,
            check=False,
            stderr=subprocess.DEVNULL,
        )


def protocols(endpoints: dict[str, str], posix_root: Path) -> dict[str, Protocol]:
    tls = {"x509_cert_dir": endpoints["X509_CERT_DIR"]}
    root, davs, s3 = (urlsplit(endpoints[key]) for key in ("XROOTD_URL", "DAVS_URL", "S3_ENDPOINT_URL"))
    s3_settings = {"access_key": "testing", "secret_key": "testing"}
    return {
        "posix": create_protocol({"scheme": "file", "prefix": str(posix_root)}),
        "root": create_protocol(
            {"scheme": "root", "hostname": root.hostname, "port": root.port, "prefix": "/bench-root"}, tls
        ),
        "davs": create_protocol(
            {"scheme": "davs", "hostname": davs.hostname, "port": davs.port, "prefix": "/bench-davs"}, tls
        ),
        "s3": create_protocol(
            {"scheme": "s3", "hostname": s3.hostname, "port": s3.port, "prefix": f"/{BUCKET}/bench"},
            s3_settings,
        ),
    }


def run(args: argparse.Namespace, endpoints: dict[str, str], work: Path) -> None:
    file_size = args.total_mib * MIB // args.files
    total = file_size * args.files
    source = work / "source"
    source.mkdir()
    block = os.urandom(file_size)
    names = [f"file{index:06d}" for index in range(args.files)]
    for index, name in enumerate(names):  # distinct content per file, cheaply
        (source / name).write_bytes(index.to_bytes(8, "little") + block[8:])

    report(
        "cp-reference",
        total,
        timed(lambda: subprocess.run(["cp", "-r", str(source), str(work / "cp")], check=True)),
    )
    shutil.rmtree(work / "cp")

    for name, protocol in protocols(endpoints, work / "posix-rse").items():
        if name not in args.backends:
            continue
        pairs = [(file, protocol.path_to_pfn(f"bench/{file}")) for file in names]
        back = work / f"back-{name}"

        def put_all(protocol: Protocol = protocol, pairs: list[tuple[str, str]] = pairs) -> None:
            for file, pfn in pairs:
                protocol.put(str(source / file), pfn)

        def get_all(
            protocol: Protocol = protocol, pairs: list[tuple[str, str]] = pairs, back: Path = back
        ) -> None:
            for file, pfn in pairs:
                protocol.get(pfn, str(back / file))

        report(f"put-{name}", total, timed(put_all))
        report(f"get-{name}", total, timed(get_all))
        if (back / names[-1]).read_bytes() != (source / names[-1]).read_bytes():
            sys.exit(f"{name}: data read back differs")
        for _, pfn in pairs:
            protocol.delete(pfn)
        shutil.rmtree(back)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="20 MiB in 20 files")
    parser.add_argument("--total-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--backends", nargs="+", default=["posix", "root", "davs", "s3"])
    parser.add_argument("--env-file", type=Path, help="endpoints.env of already running servers")
    args = parser.parse_args()
    if args.quick:
        args.total_mib, args.files = 20, 20
    print("# name size(bytes) seconds rate peak_rss", flush=True)
    with tempfile.TemporaryDirectory(prefix="datamgmt-bench-") as work:
        if args.env_file:
            run(args, read_env_file(args.env_file), Path(work))
        else:
            with started_endpoints() as endpoints:
                run(args, endpoints, Path(work))


if __name__ == "__main__":
    main()

"""A steady workload through the REST API, as users drive it: uploads, rules, attachments, reads.

Each :class:`Workload` thread has its own :class:`~datamgmt.client.Client`.  A call that fails
because the server was unreachable or answered 503 is repeated (the caller's job, as for any
client of a service that is being restarted); an answer that says the earlier attempt went
through after all (``Duplicate``, ``RuleNotFound`` on a delete) counts as done.  Rules go as a
user makes them go through Rucio's REST API: a soft deletion, then a lifetime of seconds, or a
short lifetime from the start; the judge-cleaner removes them.  Every call's
latency and every error are recorded per operation, which is what ``bench/load.py`` reports.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from datamgmt.client import downloads
from datamgmt.client.client import Client
from datamgmt.client.config import ClientConfig
from datamgmt.exceptions import DatamgmtError, Duplicate, RuleNotFound, ServiceUnavailable, StorageError
from datamgmt.rse.protocols import Protocol, create_protocol, select_protocol
from datamgmt.rse.upload import upload_file
from tests.faults.site import DESTINATIONS, SCOPE, SOURCE, Site

T = TypeVar("T")
ProtocolFactory = Callable[[Mapping[str, Any]], Protocol]
EXPRESSIONS = (*DESTINATIONS, "|".join(DESTINATIONS), f"{DESTINATIONS[0]}|{DESTINATIONS[1]}")
#: Relative weights of the operations; ``download`` only when asked for (it reads from storage).
WEIGHTS = {"register": 4, "add_rule": 3, "delete_rule": 2, "read": 3}
#: Operations on storage, not the API: their errors are never the server's 5xx.
STORAGE_OPS = frozenset({"upload", "download"})
#: How long one logical call keeps retrying through outages before it counts as failed.
RETRY_SECONDS = 120.0


def client_for(site: Site, api_url: str, account: str, workdir: Path) -> Client:
    token = workdir / f"token-{account}-{threading.get_ident()}"
    return Client(
        ClientConfig(
            url=api_url,
            account=account,
            username=account,
            password=site.password(account),
            token_file=str(token),
        )
    )


def unreachable(error: DatamgmtError) -> bool:
    """The client could not reach the server at all (a worker died mid-request, a restart)."""
    return isinstance(error, ServiceUnavailable) and error.message.startswith("Cannot reach")


@dataclass
class Stats:
    """What the workload did; thread-safe."""

    done: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    #: (operation, error class) → count, every attempt that raised, retried or not.
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: Answers with a 5xx status from the server (not "could not connect"), by status.
    server_errors: Counter[int] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def attempt(self, op: str, seconds: float, error: DatamgmtError | None) -> None:
        with self._lock:
            self.latencies[op].append(seconds)
            if error is not None:
                self.errors[(op, error.error_class)] += 1
                if error.status >= 500 and op not in STORAGE_OPS and not unreachable(error):
                    self.server_errors[error.status] += 1

    def outcome(self, op: str, ok: bool) -> None:
        with self._lock:
            (self.done if ok else self.failed)[op] += 1


@dataclass
class Workload:
    """``threads`` users of ``account`` hammering the API until :meth:`stop`."""

    site: Site
    api_url: str
    workdir: Path
    account: str = "root"
    threads: int = 2
    seed: int = 0
    files_per_batch: int = 3
    file_size: int = 2048
    weights: dict[str, int] = field(default_factory=lambda: dict(WEIGHTS))
    protocol_factory: ProtocolFactory = create_protocol
    stats: Stats = field(default_factory=Stats)
    datasets: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    #: Files written to storage that could not be registered in the end (storage without catalogue).
    unregistered: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    # -- running ---------------------------------------------------------------------------
    def start(self) -> Workload:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for index in range(self.threads):
            thread = threading.Thread(target=self._run, args=(index,), name=f"workload-{index}", daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._workers:
            thread.join(timeout=RETRY_SECONDS + 30)
        self._remove_unregistered()

    def _remove_unregistered(self) -> None:
        """Delete the uploads whose registration failed for good, as a careful uploader does.

        Without this a registration that the faults made fail leaves files on storage that no
        replica names, which ``check --storage`` rightly reports as dark data.  A registration
        whose answer was lost may still have gone through, so only files the catalogue does not
        list at SOURCE are removed.
        """
        if not self.unregistered:
            return
        client = client_for(self.site, self.api_url, self.account, self.workdir)
        dids = [(SCOPE, name) for name in self.unregistered]
        listed = client.list_replicas(dids, rse_expression=SOURCE, all_states=True)
        registered = {row["name"] for row in listed if SOURCE in row.get("states", {})}
        protocol = self.protocol_factory(select_protocol(client.get_rse(SOURCE)["protocols"], "write", "wan"))
        orphans = [{"scope": SCOPE, "name": name} for name in self.unregistered if name not in registered]
        for pfn in protocol.lfns2pfns(orphans).values():
            if protocol.exists(pfn):
                protocol.delete(pfn)

    def _run(self, index: int) -> None:
        rng = random.Random(self.seed * 1000 + index)
        client = client_for(self.site, self.api_url, self.account, self.workdir)
        actor = _Actor(self, client, rng, f"w{self.seed}-{index}")
        ops, weights = zip(*self.weights.items(), strict=True)
        while not self._stop.is_set():
            op = rng.choices(ops, weights)[0]
            try:
                getattr(actor, op)()
                self.stats.outcome(op, True)
            except DatamgmtError:
                self.stats.outcome(op, False)

    # -- shared state ----------------------------------------------------------------------
    def remember(self, kind: str, value: str) -> None:
        with self._lock:
            getattr(self, kind).append(value)

    def pick(self, rng: random.Random, kind: str, *, take: bool = False, keep: int = 0) -> str | None:
        with self._lock:
            items = getattr(self, kind)
            if len(items) <= keep:
                return None
            index = rng.randrange(len(items))
            return items.pop(index) if take else items[index]


class _Actor:
    """One workload thread's operations."""

    def __init__(self, workload: Workload, client: Client, rng: random.Random, prefix: str) -> None:
        self.w, self.client, self.rng, self.prefix = workload, client, rng, prefix
        self.counter = 0
        self.scratch = Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=workload.workdir))

    def call(
        self,
        op: str,
        fn: Callable[[], T],
        done: tuple[type[DatamgmtError], ...] = (),
        retry: tuple[type[DatamgmtError], ...] = (ServiceUnavailable,),
    ) -> T | None:
        """``fn()`` until it succeeds; retried while it raises ``retry`` (by default: the server
        unreachable) or any error answered 503 (the client's own repeats ran out), for at most
        :data:`RETRY_SECONDS`; ``done`` errors mean it went through."""
        deadline = time.monotonic() + RETRY_SECONDS
        while True:
            started = time.perf_counter()
            try:
                result = fn()
            except DatamgmtError as error:
                self.w.stats.attempt(op, time.perf_counter() - started, error)
                if isinstance(error, done):
                    return None
                transient = isinstance(error, retry) or error.status == 503  # 503 says: repeat later
                if not transient or time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
                continue
            self.w.stats.attempt(op, time.perf_counter() - started, None)
            return result

    # -- operations ------------------------------------------------------------------------
    def register(self) -> None:
        """Upload a few files to SRC (verified, through the storage protocol) and register them,
        into a new dataset or one that rules already cover (the judge must follow)."""
        dataset = (
            None if not self.w.datasets or self.rng.random() < 0.3 else self.w.pick(self.rng, "datasets")
        )
        if dataset is None:
            dataset = f"{self.prefix}-ds{self.counter}"
            self.call(
                "add_dataset", lambda: self.client.add_did(SCOPE, dataset, "DATASET"), done=(Duplicate,)
            )
            self.w.remember("datasets", dataset)
        files = [self._upload() for _ in range(self.w.files_per_batch)]
        try:
            self.call("add_replicas", lambda: self.client.add_replicas(SOURCE, files), done=(Duplicate,))
        except DatamgmtError:
            self.w.unregistered.extend(f["name"] for f in files)
            raise
        self.call(
            "attach",
            lambda: self.client.attach(SCOPE, dataset, [(SCOPE, f["name"]) for f in files]),
            done=(Duplicate,),
        )

    def _upload(self) -> dict[str, Any]:
        self.counter += 1
        name = f"{self.prefix}-f{self.counter}"
        local = self.scratch / name
        local.write_bytes(self.rng.randbytes(self.w.file_size))
        protocol = self._source_protocol()
        pfn = protocol.lfns2pfns([{"scope": SCOPE, "name": name}])[f"{SCOPE}:{name}"]
        result = self.call(
            "upload",
            lambda: upload_file(protocol, str(local), pfn, overwrite=True),
            retry=(ServiceUnavailable, StorageError),
        )
        local.unlink()
        assert result is not None
        return {
            "scope": SCOPE,
            "name": name,
            "bytes": result.size,
            "adler32": result.adler32,
            "md5": result.md5,
            "state": "A",
        }

    def _source_protocol(self) -> Protocol:
        if not hasattr(self, "_protocol"):
            info = self.call("get_rse", lambda: self.client.get_rse(SOURCE))
            self._protocol = self.w.protocol_factory(select_protocol(info["protocols"], "write", "wan"))  # type: ignore[index]
        return self._protocol

    def add_rule(self) -> None:
        dataset = self.w.pick(self.rng, "datasets")
        if dataset is None:
            return
        expression = self.rng.choice(EXPRESSIONS)
        copies = 2 if "|" in expression and self.rng.random() < 0.5 else 1
        # A quarter of the rules are short-lived: the judge-cleaner removes them, often mid-transfer.
        lifetime = self.rng.randint(1, 20) if self.rng.random() < 0.25 else None
        ids = self.call(
            "add_rule",
            lambda: self.client.add_rule([(SCOPE, dataset)], copies, expression, lifetime=lifetime),
            done=(Duplicate,),
        )
        for rule_id in ids or []:
            self.w.remember("rules", rule_id)

    def delete_rule(self) -> None:
        """Delete a rule as a user who wants it gone now: the REST deletion is soft (it expires
        within the hour), so the owner also cuts its lifetime to a few seconds; the judge-cleaner
        then removes it, while its transfers may still be in flight."""
        rule_id = self.w.pick(self.rng, "rules", take=True, keep=4)
        if rule_id is None:
            return
        self.call("delete_rule", lambda: self.client.delete_rule(rule_id), done=(RuleNotFound,))
        lifetime = self.rng.randint(0, 5)
        self.call(
            "expire_rule", lambda: self.client.update_rule(rule_id, lifetime=lifetime), done=(RuleNotFound,)
        )

    def read(self) -> None:
        dataset = self.w.pick(self.rng, "datasets")
        if dataset is not None:
            self.call("list_replicas", lambda: list(self.client.list_replicas([(SCOPE, dataset)])))
        rule_id = self.w.pick(self.rng, "rules")
        if rule_id is not None:
            self.call("get_rule", lambda: self.client.get_rule(rule_id), done=(RuleNotFound,))

    def download(self) -> None:
        """Download one dataset's files from wherever they are (SRC always has them)."""
        dataset = self.w.pick(self.rng, "datasets")
        if dataset is None:
            return
        replicas = self.call("list_replicas", lambda: list(self.client.list_replicas([(SCOPE, dataset)])))
        target = self.scratch / "download"
        try:
            outcomes = self.call(
                "download", lambda: downloads.download(self.client, replicas or [], str(target))
            )
            failed = [o for o in outcomes or [] if o.error is not None]
            if failed:
                self.w.stats.attempt("download", 0.0, failed[0].error)
        finally:
            shutil.rmtree(target, ignore_errors=True)


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def summary(stats: Stats, seconds: float) -> list[str]:
    """One line per operation: calls, calls/s, p50 and p99 in ms, errors."""
    lines = [f"{'operation':<14} {'calls':>7} {'per_s':>8} {'p50_ms':>8} {'p99_ms':>8} {'errors':>7}"]
    errors_by_op: Counter[str] = Counter()
    for (op, _), n in stats.errors.items():
        errors_by_op[op] += n
    for op in sorted(stats.latencies):
        values = stats.latencies[op]
        lines.append(
            f"{op:<14} {len(values):>7} {len(values) / seconds:>8.1f} "
            f"{percentile(values, 0.5) * 1000:>8.1f} {percentile(values, 0.99) * 1000:>8.1f} "
            f"{errors_by_op[op]:>7}"
        )
    return lines


def cleanup_scratch(workdir: Path) -> None:
    for entry in workdir.glob("w*-*"):
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
    os.makedirs(workdir, exist_ok=True)

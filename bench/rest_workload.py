"""A real workload over REST, in Rucio's dialect: the same calls rucio-clients 41 sends.

``python -m bench.rest_workload SERVER_URL`` drives, with one client thread, the steps of
issue 17's table against any server that speaks Rucio's REST API (ours or the real Rucio
41, ``pip install "rucio==41.*"``), so one script compares both on the same machine:

* ``ping``: ``GET /ping`` one at a time (requests/s): the server's floor for any call over
  HTTP with this client, which the small calls below cannot go under;
* ``admin``: per RSE ``POST /rses/R``, two ``POST /rses/R/attr/<key>``, ``POST
  /rses/R/protocols/file``, ``POST /accounts/<a>/limits/local/R``; then ``POST
  /accounts/<a>/scopes/<s>`` (calls/s);
* ``register``: ``POST /replicas`` with ``--chunk`` files each (files/s);
* ``attach``: ``POST /dids/<s>/<ds>/dids`` with ``--chunk`` files each (files/s);
* ``get_did``: ``GET /dids/<s>/<name>`` one at a time (requests/s);
* ``rse_info``: ``GET /rses/<rse>`` one at a time, what ``rucio upload`` and ``rucio
  download`` ask before they reach storage (requests/s);
* ``file_replicas``: ``POST /replicas/list`` of one file at a time, as ``rucio download``
  sends it (requests/s);
* ``rule_transfers``: ``POST /rules/`` on the dataset to an RSE without the data, then
  ``GET /rules/<id>`` until every lock exists (locks/s);
* ``rule_in_place``: the same where the data already is (locks/s);
* ``list_replicas``: ``POST /replicas/list`` of the dataset, read as a stream (files/s);
* ``expression``: ``GET /rses/?expression=...``, four expressions matching 33 to 333 of
  ``--rses`` RSEs (calls/s).

Every object carries a random run tag, so runs on one server never collide.  One line per
step: rate, p50 and p95 per call, and with ``--compare`` the ratio of this run's rate to the
saved one (``--save`` writes this run's figures).  A step of 20 calls or more also prints its
last tenth's mean latency over its first tenth's: flat scaling keeps it near 1 as the catalogue
grows within the run.  ``--server-pid`` prints the server's peak RSS (the largest of the process
and its children) after each step.

``--against URL`` drives a second server in the same run, step by step: each step runs on one
server and then on the other (the order alternates from step to step), and a third line gives
the ratio of the two rates.  A ratio of two runs minutes apart moves with the machine (the
session VMs have changed one server's rate by 30% between two runs of the same code); two
halves of one step run seconds apart share most of its minute.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rest_transport import TRANSPORTS, Answer  # noqa: E402

CLOUDS = ["EU", "US", "ASIA", "CA", "AU", "SA", "AF", "IN", "JP", "CN"]
UNITS = {
    "ping": "req/s",
    "admin": "calls/s",
    "get_did": "req/s",
    "rse_info": "req/s",
    "file_replicas": "req/s",
    "attach": "files/s",
    "register": "files/s",
    "rule_transfers": "locks/s",
    "rule_in_place": "locks/s",
    "list_replicas": "files/s",
    "expression": "calls/s",
}


@dataclass
class Step:
    """Per-call latencies of one step and the items it handled."""

    name: str
    items: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def timed(self, call: Callable[..., object], *args: object, items: int = 1) -> object:
        started = time.perf_counter()
        result = call(*args)
        elapsed = time.perf_counter() - started
        self.latencies.append(elapsed)
        self.seconds += elapsed
        self.items += items
        return result

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000 if ordered else 0.0

    @property
    def drift(self) -> float | None:
        """Mean latency of the step's last tenth of calls over its first tenth (None under 20
        calls): growth with the catalogue's size within one run, which the machine's noise
        between runs hides when rates at two sizes are compared."""
        tenth = len(self.latencies) // 10
        if tenth < 2:
            return None
        return sum(self.latencies[-tenth:]) / sum(self.latencies[:tenth])

    def summary(self) -> dict[str, float | None]:
        return {
            "rate": self.rate,
            "p50_ms": self.percentile(0.5),
            "p95_ms": self.percentile(0.95),
            "items": self.items,
            "seconds": self.seconds,
            "drift": self.drift,
        }


class StepFailed(Exception):
    """A call of a step was refused; the step is reported as failed and the run goes on."""


class RucioREST:
    """The headers and body shapes of rucio-clients 41 (docs/rucio-compatibility.md)."""

    def __init__(
        self, base: str, account: str, username: str, password: str, vo: str, transport: str = "lean"
    ) -> None:
        self.http = TRANSPORTS[transport](
            base.rstrip("/"),
            {
                "X-Rucio-Account": account,
                "X-Rucio-VO": vo,
                "X-Rucio-Script": "bench::rest_workload",
                "User-Agent": "rucio-clients/41.5.1",
                "Accept": "*/*",
            },
        )
        self.base, self.account = base, account
        response = self.http.call(
            "GET",
            "/auth/userpass",
            None,
            {"X-Rucio-Username": username, "X-Rucio-Password": password, "X-Rucio-Auth-Token": ""},
        )
        self._check(response, "login")
        self.http.headers["X-Rucio-Auth-Token"] = response.headers["X-Rucio-Auth-Token"]

    @staticmethod
    def _check(response: Answer, what: str) -> Answer:
        if response.status_code >= 300:
            raise StepFailed(f"{what}: HTTP {response.status_code} {response.text[:300]}")
        return response

    def post(self, path: str, body: object | None = None) -> Answer:
        # Like the client: a JSON document as the body, no Content-Type header.
        data = None if body is None else json.dumps(body)
        return self._check(self.http.call("POST", path, data), f"POST {path}")

    def get(self, path: str, params: dict[str, str] | None = None) -> Answer:
        return self._check(self.http.call("GET", with_query(path, params), None), f"GET {path}")

    def get_json(self, path: str) -> object:
        return self.get(path).json()

    def stream(
        self, method: str, path: str, body: object | None = None, params: dict[str, str] | None = None
    ) -> int:
        """Lines of an ``application/x-json-stream`` answer, each parsed as the client does."""
        data = None if body is None else json.dumps(body)
        with self.http.lines(method, with_query(path, params), data) as (head, lines):
            self._check(head, f"{method} {path}")
            return sum(1 for line in lines if line and json.loads(line) is not None)


def with_query(path: str, params: dict[str, str] | None) -> str:
    return f"{path}?{urlencode(params)}" if params else path


def rule_body(scope: str, name: str, expression: str) -> dict[str, object]:
    """``RuleClient.add_replication_rule`` with its defaults."""
    return {
        "dids": [{"scope": scope, "name": name}],
        "copies": 1,
        "rse_expression": expression,
        "weight": None,
        "lifetime": None,
        "grouping": "DATASET",
        "account": None,
        "locked": False,
        "source_replica_expression": None,
        "activity": None,
        "notify": "N",
        "purge_replicas": False,
        "ignore_availability": False,
        "comment": None,
        "ask_approval": False,
        "asynchronous": False,
        "delay_injection": None,
        "priority": 3,
        "meta": None,
    }


def chunks(items: list[dict[str, object]], size: int) -> Iterator[list[dict[str, object]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def peak_rss_mib(pid: int | None) -> float | None:
    """VmHWM of the server and its children (gunicorn workers), the largest, in MiB."""
    if pid is None:
        return None
    pids = [pid]
    try:
        pids += [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return None
    peaks = []
    for each in pids:
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        except OSError:
            continue
    return max(peaks) if peaks else None


class Workload:
    """One server's run: its objects, its steps and their results.  ``label`` prefixes its lines
    where two servers run side by side; ``baseline`` holds saved figures to compare with."""

    def __init__(
        self,
        client: RucioREST,
        args: argparse.Namespace,
        label: str = "",
        server_pid: int | None = None,
        baseline: dict[str, dict[str, float]] | None = None,
    ) -> None:
        self.client = client
        self.args = args
        self.label, self.server_pid, self.baseline = label, server_pid, baseline
        tag = uuid.uuid4().hex[:6]
        self.scope = f"bench{tag}"
        self.rse_prefix = f"B{tag.upper()}"
        self.tier, self.cloud = f"tier{tag}", f"cloud{tag}"
        self.dataset = "dataset"
        self.files = [
            {
                "scope": self.scope,
                "name": f"file{i:07d}",
                "bytes": 1000 + i,
                "adler32": "0cc737eb",
                "meta": {"guid": uuid.uuid4().hex},
            }
            for i in range(args.n)
        ]
        self.results: dict[str, Step] = {}

    def rse(self, index: int) -> str:
        return f"{self.rse_prefix}{index:04d}"

    def run(self, name: str, body: Callable[[Step], None]) -> None:
        step = Step(name)
        prefix = f"{self.label:8s}" if self.label else ""
        try:
            body(step)
        except StepFailed as exc:
            print(f"{prefix}{name:15s} FAILED after {step.items} items: {exc}", flush=True)
            return
        self.results[name] = step
        line = (
            f"{prefix}{name:15s} {step.rate:10.1f} {UNITS[name]:8s} p50 {step.percentile(0.5):8.2f} ms"
            f"  p95 {step.percentile(0.95):8.2f} ms  ({step.items} in {step.seconds:.2f} s)"
        )
        if step.drift is not None:
            line += f"  last/first tenth {step.drift:.2f}x"
        saved = self.baseline.get(name) if self.baseline else None
        if saved and saved.get("rate"):
            line += f"  ratio {step.rate / saved['rate']:.2f}x"
        rss = peak_rss_mib(self.server_pid)
        if rss is not None:
            line += f"  server peak RSS {rss:.0f} MiB"
        print(line, flush=True)

    def admin(self, step: Step) -> None:
        account = quote(self.client.account)
        protocol = {
            "hostname": "localhost",
            "scheme": "file",
            "port": None,
            "impl": "rucio.rse.protocols.posix.Default",
            "prefix": "/bench/",
            "domains": {
                "wan": {
                    "read": 1,
                    "write": 1,
                    "delete": 1,
                    "third_party_copy_read": 1,
                    "third_party_copy_write": 1,
                },
                "lan": {"read": 1, "write": 1, "delete": 1},
            },
        }
        for i in range(self.args.rses):
            rse = self.rse(i)
            post = self.client.post
            step.timed(post, f"/rses/{rse}", {"deterministic": True})
            step.timed(post, f"/rses/{rse}/attr/{self.tier}", {"value": str(i % 3)})
            step.timed(post, f"/rses/{rse}/attr/{self.cloud}", {"value": CLOUDS[i % 10]})
            step.timed(post, f"/rses/{rse}/protocols/file", protocol)
            step.timed(post, f"/accounts/{account}/limits/local/{rse}", {"bytes": 10**15})
        step.timed(self.client.post, f"/accounts/{account}/scopes/{self.scope}")

    def register(self, step: Step) -> None:
        for chunk in chunks(self.files, self.args.chunk):
            body = {"rse": self.rse(0), "files": chunk, "ignore_availability": True}
            step.timed(self.client.post, "/replicas", body, items=len(chunk))

    def attach(self, step: Step) -> None:
        self.client.post(
            f"/dids/{self.scope}/{self.dataset}", {"type": "DATASET", "statuses": {"monotonic": False}}
        )
        for chunk in chunks(self.files, self.args.chunk):
            dids = [{"scope": f["scope"], "name": f["name"]} for f in chunk]
            step.timed(
                self.client.post, f"/dids/{self.scope}/{self.dataset}/dids", {"dids": dids}, items=len(dids)
            )

    def ping(self, step: Step) -> None:
        for _ in range(self.args.gets):
            step.timed(self.client.get, "/ping")

    def get_did(self, step: Step) -> None:
        count = min(self.args.gets, len(self.files))
        for i in range(count):
            name = self.files[(i * 7919) % len(self.files)]["name"]
            step.timed(self.client.get_json, f"/dids/{self.scope}/{name}")

    def _rule(self, step: Step, expression: str) -> None:
        def create_and_wait() -> None:
            rule_id = self.client.post("/rules/", rule_body(self.scope, self.dataset, expression)).json()[0]
            while True:  # a rule created asynchronously gets its locks from the judge
                rule = self.client.get(f"/rules/{rule_id}").json()
                if rule["locks_ok_cnt"] + rule["locks_replicating_cnt"] + rule["locks_stuck_cnt"] >= len(
                    self.files
                ):
                    return
                time.sleep(0.05)

        step.timed(create_and_wait, items=len(self.files))

    def rule_transfers(self, step: Step) -> None:
        self._rule(step, self.rse(1))

    def rule_in_place(self, step: Step) -> None:
        self._rule(step, self.rse(0))

    def rse_info(self, step: Step) -> None:
        for i in range(self.args.gets):
            step.timed(self.client.get_json, f"/rses/{self.rse(i % 10)}")

    def file_replicas(self, step: Step) -> None:
        for i in range(self.args.gets):
            name = self.files[(i * 7919) % len(self.files)]["name"]
            lines = step.timed(self.client.stream, "POST", "/replicas/list", self.listing(name))
            if lines != 1:
                raise StepFailed(f"file_replicas: {lines} lines for one file")

    def listing(self, name: str) -> dict[str, object]:
        """The body of ``POST /replicas/list`` that rucio-clients 41 sends for one DID."""
        return {
            "dids": [{"scope": self.scope, "name": name}],
            "domain": None,
            "ignore_availability": True,
            "all_states": False,
            "resolve_archives": True,
            "resolve_parents": False,
            "client_location": {
                "ip": "127.0.0.1",
                "fqdn": "localhost",
                "site": "ROAMING",
                "latitude": None,
                "longitude": None,
            },
        }

    def list_replicas(self, step: Step) -> None:
        body = self.listing(self.dataset)
        for _ in range(self.args.repeat):
            lines = step.timed(self.client.stream, "POST", "/replicas/list", body, items=len(self.files))
            if lines != len(self.files):
                raise StepFailed(f"list_replicas: {lines} lines for {len(self.files)} files")

    def expressions(self) -> list[tuple[str, int]]:
        """Four expressions and how many of this run's RSEs each selects."""
        rses = range(self.args.rses)
        return [
            (f"{self.tier}=1", sum(1 for i in rses if i % 3 == 1)),
            (f"{self.cloud}=EU", sum(1 for i in rses if i % 10 == 0)),
            (f"{self.tier}=2&{self.cloud}=US", sum(1 for i in rses if i % 3 == 2 and i % 10 == 1)),
            (
                f"({self.cloud}=EU|{self.cloud}=US)\\{self.tier}=0",
                sum(1 for i in rses if i % 10 in (0, 1) and i % 3 != 0),
            ),
        ]

    def expression(self, step: Step) -> None:
        cases = [case for case in self.expressions() if case[1]]
        for i in range(self.args.expression_calls):
            expression, expected = cases[i % len(cases)]
            found = step.timed(self.client.stream, "GET", "/rses/", None, {"expression": expression})
            if found != expected:
                raise StepFailed(f"expression {expression!r}: {found} RSEs, expected {expected}")


#: The steps, in the order they run: files must exist before they are attached or read.
STEPS = [
    "admin",
    "ping",
    "register",
    "attach",
    "get_did",
    "rse_info",
    "file_replicas",
    "rule_transfers",
    "rule_in_place",
    "list_replicas",
    "expression",
]
#: Steps that need the run's files, so register and attach run for them.
NEED_FILES = {"attach", "get_did", "file_replicas", "rule_transfers", "rule_in_place", "list_replicas"}


def selected_steps(wanted: set[str]) -> list[str]:
    """The steps to run, in order: admin always, register and attach where a step needs files."""
    return [
        name
        for name in STEPS
        if name == "admin" or name in wanted or (name in ("register", "attach") and wanted & NEED_FILES)
    ]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("server", help="base URL, e.g. http://127.0.0.1:18980")
    parser.add_argument("-n", "--n", type=int, default=5000, help="files (default 5000)")
    parser.add_argument("--rses", type=int, default=1000, help="RSEs the admin step creates (default 1000)")
    parser.add_argument("--chunk", type=int, default=500, help="files per register/attach call (default 500)")
    parser.add_argument("--gets", type=int, default=2000, help="single-DID GETs (default 2000)")
    parser.add_argument("--repeat", type=int, default=3, help="list_replicas passes (default 3)")
    parser.add_argument("--expression-calls", type=int, default=400, help="expression calls (default 400)")
    parser.add_argument("--steps", default=",".join(STEPS), help="comma-separated subset (admin always runs)")
    parser.add_argument("--account", default="root")
    parser.add_argument("--username", default="ddmlab")
    parser.add_argument("--password", default="secret")
    parser.add_argument("--vo", default="def")
    parser.add_argument(
        "--client",
        choices=sorted(TRANSPORTS),
        default="lean",
        help="lean: one kept-alive http.client connection (default); requests: as rucio-clients",
    )
    parser.add_argument("--save", type=Path, help="write this run's figures as JSON")
    parser.add_argument("--compare", type=Path, help="a --save file: print this run's rate over its rate")
    parser.add_argument("--server-pid", type=int, help="print the peak RSS of this process tree")
    parser.add_argument("--against", help="a second server's base URL, run step by step beside the first")
    parser.add_argument("--against-username", help="its user name (default: --username)")
    parser.add_argument("--against-password", help="its password (default: --password)")
    parser.add_argument("--against-pid", type=int, help="print the peak RSS of its process tree")
    args = parser.parse_args(argv)
    if args.rses < 2:
        parser.error("--rses must be at least 2")
    return args


def login(args: argparse.Namespace, base: str, username: str, password: str) -> RucioREST:
    try:
        return RucioREST(base, args.account, username, password, args.vo, args.client)
    except StepFailed as exc:
        raise SystemExit(str(exc)) from None


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    baseline = json.loads(args.compare.read_text())["steps"] if args.compare else None
    client = login(args, args.server, args.username, args.password)
    runs = [Workload(client, args, "server" if args.against else "", args.server_pid, baseline)]
    if args.against:
        client = login(
            args, args.against, args.against_username or args.username, args.against_password or args.password
        )
        runs.append(Workload(client, args, "against", args.against_pid))
    print(
        f"# {args.server}: N={args.n} files, {args.rses} RSEs, {args.chunk} per call,"
        f" one client thread ({args.client})",
        flush=True,
    )
    if args.against:
        print(f"# against {args.against}, each step on both, the first server alternating", flush=True)
    for index, name in enumerate(selected_steps(set(args.steps.split(",")))):
        for workload in runs if index % 2 == 0 else runs[::-1]:
            workload.run(name, getattr(workload, name))
        if len(runs) == 2:
            print_ratio(name, runs[0], runs[1])
    if args.save:  # the first server's figures, with the second's under "against"
        figures = saved(runs[0], args.n, args.rses)
        if len(runs) == 2:
            figures["against"] = saved(runs[1], args.n, args.rses)
        args.save.write_text(json.dumps(figures, indent=1))


def print_ratio(name: str, server: Workload, against: Workload) -> None:
    mine, theirs = server.results.get(name), against.results.get(name)
    if mine and theirs and theirs.rate:
        print(f"{'ratio':8s}{name:15s} {mine.rate / theirs.rate:10.2f}x  server over against", flush=True)


def saved(workload: Workload, n: int, rses: int) -> dict[str, object]:
    return {
        "server": workload.client.base,
        "n": n,
        "rses": rses,
        "steps": {name: step.summary() for name, step in workload.results.items()},
    }


if __name__ == "__main__":
    sys.exit(main())

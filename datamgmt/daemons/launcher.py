"""``datamgmt-daemon NAME [--run-once] [--threads N] [--metrics-port P]``: run any daemon.

Each daemon lives in the module named in :data:`DAEMONS` and exposes its class as
``DAEMON``; the module is imported only when that daemon runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from datamgmt.daemons import logs
from datamgmt.daemons.common import Daemon, Runner
from datamgmt.exceptions import DatamgmtError
from datamgmt.startup import freeze_startup_objects

#: Daemon names (Rucio's; docs/architecture.md, "Stable names") and the module that defines each.
DAEMONS: dict[str, str] = {
    "judge-evaluator": "datamgmt.daemons.judge.evaluator",
    "judge-repairer": "datamgmt.daemons.judge.repairer",
    "judge-cleaner": "datamgmt.daemons.judge.cleaner",
    "judge-injector": "datamgmt.daemons.judge.injector",
    "conveyor-submitter": "datamgmt.daemons.conveyor.submitter",
    "conveyor-stager": "datamgmt.daemons.conveyor.stager",
    "conveyor-poller": "datamgmt.daemons.conveyor.poller",
    "conveyor-finisher": "datamgmt.daemons.conveyor.finisher",
    "reaper": "datamgmt.daemons.reaper",
    "undertaker": "datamgmt.daemons.undertaker",
    "transmogrifier": "datamgmt.daemons.transmogrifier",
    "abacus": "datamgmt.daemons.abacus",
    "hermes": "datamgmt.daemons.hermes",
    "necromancer": "datamgmt.daemons.necromancer",
}


def load(name: str) -> type[Daemon]:
    """The daemon class registered as ``name`` (KeyError for unknown names)."""
    daemon: type[Daemon] = importlib.import_module(DAEMONS[name]).DAEMON
    return daemon


def prepare_process(classes: Sequence[type[Daemon]]) -> None:
    """What a process that runs ``classes`` does before its first item: load the solver's
    compiled kernel if one of them places rules (0.6 to 0.9 s that the first rule would wait
    otherwise), then leave what start-up built out of later garbage collections."""
    if any(cls.places_rules for cls in classes):
        # Imported here: the other daemons need neither numpy nor numba.
        from datamgmt.core.placement.solver import warm_up

        warm_up()
    freeze_startup_objects()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="datamgmt-daemon", description="Run a datamgmt daemon.")
    parser.add_argument("name", nargs="?", help="daemon to run (see --list)")
    parser.add_argument("--list", action="store_true", help="print the daemon names and exit")
    parser.add_argument("--run-once", action="store_true", help="process what is due now, then exit 0")
    parser.add_argument("--threads", type=int, default=1, help="worker threads in this process")
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    parser.add_argument("--metrics-address", default="127.0.0.1", help="address for --metrics-port")
    parser.add_argument("--batch-size", type=int, help="items claimed per batch")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(DAEMONS))
        return 0
    if not args.name:
        parser.error("a daemon NAME is required (see --list)")
    if args.name not in DAEMONS:
        parser.error(f"unknown daemon {args.name!r}; known: {', '.join(DAEMONS)}")
    daemon_cls = load(args.name)
    logs.configure(args.log_level)
    prepare_process([daemon_cls])
    try:
        Runner(
            daemon_cls,
            threads=args.threads,
            once=args.run_once,
            batch=args.batch_size,
            metrics_port=args.metrics_port,
            metrics_address=args.metrics_address,
        ).run()
    except DatamgmtError as exc:
        # A misconfiguration (no broker, bad URL) is one readable line, not a traceback.
        print(f"datamgmt-daemon: {args.name}: {exc.error_class}: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

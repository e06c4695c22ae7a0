"""``rule`` commands, including ``rule watch``: a live view until the rule is OK or STUCK."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from contextlib import nullcontext
from typing import Any

import click
from rich.console import Group as RenderGroup
from rich.live import Live
from rich.table import Table
from rich.text import Text

from datamgmt.cli.completion import complete_rse
from datamgmt.cli.context import DID, AppContext, Group, pass_app
from datamgmt.cli.exist_ok import create, differs, exist_ok_option
from datamgmt.cli.output import RULE_STATE_STYLES, Column, human_size, iso_dates, locks_text
from datamgmt.client.placement import PLACEMENT_REFUSALS, dids_bytes, explained_refusal, rse_verdicts
from datamgmt.exceptions import AccessDenied, DatamgmtError, Duplicate

RULE_COLUMNS = (
    Column("id", "ID"),
    Column("account"),
    Column("scope"),
    Column("name"),
    Column("rse_expression", "RSE expression"),
    Column("copies"),
    Column("bytes", "size", kind="size"),
    Column("state", kind="state"),
    Column("locks", "locks ok/repl/stuck", kind="locks"),
    Column("created_at", "created"),
    Column("expires_at", "expires"),
)
EXPLAIN_COLUMNS = (
    Column("did", "DID"),
    Column("group"),
    Column("rses", "chosen RSEs"),
    Column("locks"),
    Column("files_in_place", "in place"),
    Column("bytes_to_transfer", "to transfer", kind="size"),
    Column("quota_after", "quota left after"),
)
LOCK_TRANSFER_COLUMNS = (
    Column("did", "DID"),
    Column("rse", "RSE"),
    Column("request_state", "request", kind="state"),
    Column("attempts"),
    Column("last_error", "last error"),
    Column("next_retry", "next retry"),
)
TAPE_COLUMNS = (
    Column("did", "DID"),
    Column("rse", "RSE"),
    Column("transfer_phase", "phase", kind="state"),
    Column("staging_started_at", "staging started"),
    Column("staging_finished_at", "staged"),
    Column("archive_started_at", "archiving started"),
    Column("archive_finished_at", "archived"),
)
#: Unsettled locks ``rule show`` lists unless asked for all.
SHOWN_LOCKS = 20
HISTORY_COLUMNS = (
    Column("rule_id", "rule"),
    Column("account"),
    Column("rse_expression", "RSE expression"),
    Column("state", kind="state"),
    Column("locks", "locks ok/repl/stuck", kind="locks"),
    Column("created_at", "created"),
    Column("updated_at", "updated"),
)
VERDICT_COLUMNS = (
    Column("rse", "RSE"),
    Column("writable"),
    Column("bytes_needed", "needs", kind="size"),
    Column("quota_left", "quota left", kind="size"),
    Column("excluded_because", "excluded because"),
)
FINAL_STATES = {"OK": 0, "STUCK": 1}
LOCK_STATES = ("OK", "REPLICATING", "STAGING", "ARCHIVING", "STUCK")
#: Phases of a REPLICATING lock's transfer shown as states of their own (tape recall and archiving).
TAPE_PHASES = ("STAGING", "ARCHIVING")
RULE_STATES = ("OK", "REPLICATING", "STUCK", "SUSPENDED", "WAITING_APPROVAL", "INJECT")


@click.group("rule", cls=Group)
def rule_group() -> None:
    """Replication rules: how many copies of what, where."""


def rule_options(function: Any) -> Any:
    options = [
        click.option("--copies", type=click.IntRange(1), default=1, show_default=True),
        click.option(
            "--rses",
            "rse_expression",
            required=True,
            shell_complete=complete_rse,
            help="RSE expression, e.g. 'tier=1&country=XX'.",
        ),
        click.option("--lifetime", type=click.IntRange(1), help="Seconds until the rule expires."),
        click.option(
            "--grouping",
            type=click.Choice(["ALL", "DATASET", "NONE"]),
            default="DATASET",
            show_default=True,
            help="Keep all files, each dataset, or nothing together on an RSE.",
        ),
        click.option("--weight", help="RSE attribute weighting the choice of RSEs."),
        click.option("--source-rses", "source_replica_expression", help="Copy only from RSEs matching this."),
        click.option("--activity", help="Transfer activity."),
        click.option("--comment"),
        click.option("--locked", is_flag=True, help="Protect the rule from deletion."),
        click.option("--asynchronous", is_flag=True, help="Let the judge create the locks later."),
        click.option("--ask-approval", is_flag=True, help="Wait for an admin to approve."),
        click.argument("dids", nargs=-1, required=True, type=DID),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@rule_group.command("add")
@rule_options
@exist_ok_option
@pass_app
def rule_add(
    app: AppContext,
    dids: tuple[tuple[str, str], ...],
    copies: int,
    rse_expression: str,
    exist_ok: bool,
    **options: Any,
) -> None:
    """Ask for COPIES replicas of DIDs on RSEs matching an expression; prints the rule id.
    With --exist-ok, my same rule (DIDs, RSE expression, copies) already there is printed instead."""
    rule_ids: list[str] = []

    def make() -> None:
        rule_ids.extend(app.client.add_rule(dids, copies, rse_expression, **options))

    def existing(error: Duplicate) -> str:
        rule_ids.extend(_same_rules(app, dids, copies, rse_expression, error))
        return "\n".join(rule_ids)

    try:
        create(exist_ok, make, existing)
    except DatamgmtError as error:
        if error.error_class not in PLACEMENT_REFUSALS:
            raise
        raise explained_refusal(app.client, error, dids, rse_expression, copies) from error
    app.output.done("\n".join(rule_ids), rule_ids=rule_ids)


def _same_rules(
    app: AppContext, dids: tuple[tuple[str, str], ...], copies: int, rse_expression: str, error: Duplicate
) -> list[str]:
    """My rules with this RSE expression and copies on each DID (what DuplicateRule refers to)."""
    found = []
    for scope, name in dids:
        ids = [
            rule["id"]
            for rule in app.client.list_did_rules(scope, name)
            if (rule["account"], rule["rse_expression"], rule["copies"])
            == (app.client.account, rse_expression, copies)
        ]
        if not ids:
            raise differs(
                error, f"{scope}:{name} has no rule of mine to {rse_expression} with {copies} copies"
            )
        found.extend(ids)
    return found


@rule_group.command("explain")
@rule_options
@pass_app
def rule_explain(
    app: AppContext, dids: tuple[tuple[str, str], ...], copies: int, rse_expression: str, **options: Any
) -> None:
    """Dry run: which RSEs a rule would choose, what must move, and the quota left after.

    A rule that could not be placed is explained instead: each RSE of the expression, whether
    it takes writes, the bytes needed and the quota left (exit status 1).
    """
    try:
        explained = app.client.explain_rule(dids, copies, rse_expression, **options)
    except DatamgmtError as error:
        if error.error_class not in PLACEMENT_REFUSALS:
            raise
        _explain_refusal(app, error, dids, rse_expression, copies)
        return
    if app.output.json:
        app.output.table(explained, EXPLAIN_COLUMNS)
        return
    rows = (
        {
            "did": f"{item['scope']}:{item['name']}",
            "group": f"{group['scope']}:{group['name']}",
            "rses": ", ".join(group["rses"]),
            "locks": item.get("locks"),
            "files_in_place": item.get("files_in_place"),
            "bytes_to_transfer": sum((item.get("bytes_to_transfer") or {}).values()),
            "quota_after": ", ".join(
                f"{rse}: {human_size(left)}" for rse, left in (item.get("quota_after") or {}).items()
            ),
        }
        for item in explained
        for group in item.get("groups", [])
    )
    app.output.table(rows, EXPLAIN_COLUMNS)


def _explain_refusal(
    app: AppContext, error: DatamgmtError, dids: tuple[tuple[str, str], ...], rse_expression: str, copies: int
) -> None:
    verdicts = rse_verdicts(app.client, rse_expression, dids_bytes(app.client, dids))
    usable = sum(1 for item in verdicts if not item["excluded_because"])
    if app.output.json:
        app.output.record(
            {
                "placeable": False,
                "error": error.error_class,
                "message": error.message,
                "copies": copies,
                "usable_rses": usable,
                "rses": verdicts,
            }
        )
    else:
        click.echo(f"The rule cannot be placed: {error.error_class}: {error.message}")
        click.echo(f"{rse_expression!r} matches {len(verdicts)} RSEs, {usable} usable, {copies} needed:")
        app.output.table(verdicts, VERDICT_COLUMNS)
    click.get_current_context().exit(1)


@rule_group.command("list")
@click.option("--did", type=DID, help="Rules on this DID (default: my rules).")
@click.option("--account", help="Rules of this account.")
@click.option(
    "--state",
    type=click.Choice(RULE_STATES, case_sensitive=False),
    help="Only rules in this state (any account unless --account is given).",
)
@click.option(
    "--rse",
    "rse_expression",
    help="Only rules whose RSE expression is exactly this (any account unless --account is given).",
)
@pass_app
def rule_list(
    app: AppContext,
    did: tuple[str, str] | None,
    account: str | None,
    state: str | None,
    rse_expression: str | None,
) -> None:
    """Rules of an account or on a DID, or every rule in a state or to an RSE expression."""
    client = app.client
    if state or rse_expression:
        filters = {
            k: v
            for k, v in (
                ("state", state and state.upper()),
                ("rse_expression", rse_expression),
                ("account", account),
            )
            if v
        }
        if did:
            filters.update(scope=did[0], name=did[1])
        rules = client.list_rules(**filters)
    else:
        rules = client.list_did_rules(*did) if did else client.list_account_rules(account or client.account)
    app.output.table(rules, RULE_COLUMNS)


@rule_group.command("approve")
@click.argument("rule_id")
@pass_app
def rule_approve(app: AppContext, rule_id: str) -> None:
    """Approve a rule WAITING_APPROVAL: it is applied and starts replicating (admins)."""
    app.client.approve_rule(rule_id)
    app.output.done(f"approved rule {rule_id}", rule_id=rule_id, approved=True)


@rule_group.command("deny")
@click.argument("rule_id")
@click.option("--reason", help="Why, recorded with the denial.")
@pass_app
def rule_deny(app: AppContext, rule_id: str, reason: str | None) -> None:
    """Deny a rule WAITING_APPROVAL: it is removed (admins)."""
    app.client.deny_rule(rule_id, reason)
    app.output.done(f"denied rule {rule_id}", rule_id=rule_id, approved=False)


@rule_group.command("show")
@click.argument("rule_id")
@pass_app
@click.option(
    "--all-locks", is_flag=True, help="List every lock with transfers, not only the first unsettled ones."
)
def rule_show(app: AppContext, rule_id: str, all_locks: bool) -> None:
    """Everything about one rule, and why its unsettled locks are not OK yet: per lock the
    transfer attempts, the last error and the next retry; and for locks whose transfer went
    through tape, when staging started and ended and when archiving started and ended."""
    rule = app.client.get_rule(rule_id)
    try:
        transfers = list(app.client.lock_transfers(rule_id))
    except AccessDenied:  # another account's rule: its transfers are for its owner and admins
        transfers = []
    pending = [lock for lock in transfers if lock.get("request_state") != "DONE"]
    tape = [lock for lock in transfers if any(lock.get(column.key) for column in TAPE_COLUMNS[3:])]
    if app.output.json:
        app.output.record({**rule, "locks": pending, "tape": tape})
        return
    app.output.record(rule, RULE_COLUMNS)
    for locks, columns, title in (
        (pending, LOCK_TRANSFER_COLUMNS, "locks not settled"),
        (tape, TAPE_COLUMNS, "tape: staging and archiving"),
    ):
        if not locks:
            continue
        shown = locks if all_locks else locks[:SHOWN_LOCKS]
        rows = [iso_dates({**lock, "did": f"{lock['scope']}:{lock['name']}"}) for lock in shown]
        app.output.table(rows, columns, title=title)
        if len(shown) < len(locks):
            click.echo(f"... and {len(locks) - len(shown)} more (--all-locks)")


@rule_group.command("remove")
@click.argument("rule_id")
@click.option(
    "--purge-replicas", is_flag=True, help="Delete the replicas as soon as no other rule holds them."
)
@pass_app
def rule_remove(app: AppContext, rule_id: str, purge_replicas: bool) -> None:
    """Remove a rule (it expires within the hour; its replicas become deletable)."""
    app.client.delete_rule(rule_id, purge_replicas or None)
    app.output.done(f"removed rule {rule_id}: it expires within the hour", rule_id=rule_id, removed=True)


@rule_group.command("update")
@click.argument("rule_id")
@click.option("--lifetime", type=int, help="New lifetime in seconds from now (-1: never expires).")
@click.option("--locked/--unlocked", default=None)
@click.option("--comment")
@click.option("--priority", type=click.IntRange(1, 5))
@click.option("--activity", help="Transfer activity of the rule's future transfers.")
@click.option(
    "--source-rses",
    "source_replica_expression",
    metavar="EXPRESSION",
    help="Copy only from RSEs matching this from now on ('none': from anywhere).",
)
@click.option(
    "--boost-rule",
    "boost_rule",
    is_flag=True,
    default=None,
    help="Retry a STUCK rule's failed transfers now, not after the repairer's back-off.",
)
@click.option(
    "--suspend",
    is_flag=True,
    default=False,
    help="Freeze the rule: the judge leaves it alone until --stuck (its transfers keep running).",
)
@click.option(
    "--stuck",
    is_flag=True,
    default=False,
    help="Hand the rule to the judge-repairer now (also resumes a suspended rule).",
)
@click.option(
    "--child-rule-id",
    "child_rule_id",
    metavar="RULE_ID",
    help="Replace the rule by this rule on the same DID once that one is OK ('none': no longer).",
)
@pass_app
def rule_update(
    app: AppContext, rule_id: str, lifetime: int | None, suspend: bool, stuck: bool, **options: Any
) -> None:
    """Change a rule's lifetime, lock, comment, priority, activity or transfer sources, boost a
    STUCK rule, suspend a rule and resume it (--stuck), or have another rule replace it."""
    if suspend and stuck:
        raise click.UsageError("Give --suspend or --stuck, not both")
    changes = {key: value for key, value in options.items() if value is not None}
    if suspend or stuck:
        changes["state"] = "SUSPENDED" if suspend else "STUCK"
    if lifetime is not None:
        changes["lifetime"] = None if lifetime < 0 else lifetime
    for option in ("source_replica_expression", "child_rule_id"):
        if option in changes and str(changes[option]).lower() == "none":
            changes[option] = None
    if not changes:
        raise click.UsageError("Nothing to update: give at least one option")
    app.client.update_rule(rule_id, **changes)
    app.output.done(f"updated rule {rule_id}", rule_id=rule_id, **changes)


@rule_group.command("history")
@click.argument("did", type=DID)
@pass_app
def rule_history(app: AppContext, did: tuple[str, str]) -> None:
    """Every rule a DID has had, including removed ones, with their states over time."""
    app.output.table(app.client.list_rule_history(*did), HISTORY_COLUMNS)


@rule_group.command("move")
@click.argument("rule_id")
@click.option("--rses", "rse_expression", required=True, help="The RSE expression to move the rule to.")
@click.option("--activity", help="Transfer activity of the new rule.")
@click.option("--source-rses", "source_replica_expression", help="Copy only from RSEs matching this.")
@pass_app
def rule_move(app: AppContext, rule_id: str, rse_expression: str, **override: Any) -> None:
    """Move a rule to other RSEs: a child rule is made there, and the old rule goes once the child is OK."""
    child = app.client.move_rule(
        rule_id, rse_expression, **{key: value for key, value in override.items() if value is not None}
    )
    app.output.done(
        f"rule {rule_id} moves to {rse_expression}: new rule {child}", rule_id=rule_id, child_rule_id=child
    )


def locks_by_rse(locks: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    """Locks per RSE and state; a REPLICATING lock whose transfer is staging from tape or being
    archived to tape counts under STAGING or ARCHIVING instead, where the time goes on tape."""
    counts: dict[str, Counter[str]] = {}
    for lock in locks:
        state = lock.get("state", "?")
        if state == "REPLICATING" and lock.get("transfer_state") in TAPE_PHASES:
            state = lock["transfer_state"]
        counts.setdefault(lock.get("rse") or lock.get("rse_id", "?"), Counter())[state] += 1
    return counts


def tape_text(locks: dict[str, Counter[str]]) -> str:
    """`` (of which staging=N archiving=N)`` for the replicating locks in a tape phase, or ''."""
    phases = [(phase, sum(counts[phase] for counts in locks.values())) for phase in TAPE_PHASES]
    shown = " ".join(f"{phase.lower()}={count}" for phase, count in phases if count)
    return f" (of which {shown})" if shown else ""


def watch_view(rule: dict[str, Any], locks: dict[str, Counter[str]]) -> RenderGroup:
    state = str(rule.get("state"))
    heading = Text.assemble(
        ("rule ", "bold"),
        rule.get("id", ""),
        "  ",
        (state, RULE_STATE_STYLES.get(state, "")),
        "  locks ok/repl/stuck ",
        locks_text(rule),
    )
    table = Table("RSE", *LOCK_STATES, header_style="bold")
    for rse, counts in sorted(locks.items()):
        table.add_row(
            rse,
            *(
                Text(str(counts[name]), style=RULE_STATE_STYLES[name] if counts[name] else "dim")
                for name in LOCK_STATES
            ),
        )
    return RenderGroup(heading, table)


@rule_group.command("watch")
@click.argument("rule_id")
@click.option(
    "--interval", type=click.FloatRange(0.1), default=2.0, show_default=True, help="Seconds between polls."
)
@click.option("--timeout", type=click.FloatRange(0), help="Give up (exit 1) after this many seconds.")
@pass_app
def rule_watch(app: AppContext, rule_id: str, interval: float, timeout: float | None) -> None:
    """Follow a rule's locks by state and RSE until it is OK (exit 0) or STUCK (exit 1)."""
    ctx = click.get_current_context()
    client = app.client
    deadline = None if timeout is None else time.monotonic() + timeout
    live = (
        Live(auto_refresh=False, console=app.output.console)
        if sys.stdout.isatty() and not app.output.json
        else None
    )
    last_line = None
    with live if live is not None else nullcontext():
        while True:
            rule = client.get_rule(rule_id)
            locks = locks_by_rse(list(client.list_rule_locks(rule_id)))
            if live is not None:
                live.update(watch_view(rule, locks), refresh=True)
            else:
                line = (
                    json.dumps(
                        {
                            "id": rule_id,
                            "state": rule.get("state"),
                            "locks": {rse: dict(counts) for rse, counts in locks.items()},
                        }
                    )
                    if app.output.json
                    else f"{rule.get('state')} ok={rule.get('locks_ok_cnt', 0)} "
                    f"replicating={rule.get('locks_replicating_cnt', 0)} stuck={rule.get('locks_stuck_cnt', 0)}"
                    + tape_text(locks)
                )
                if line != last_line:
                    click.echo(line)
                    last_line = line
            if rule.get("state") in FINAL_STATES:
                if rule["state"] == "STUCK":
                    _explain_stuck(app, rule)
                ctx.exit(FINAL_STATES[rule["state"]])
            if deadline is not None and time.monotonic() >= deadline:
                click.echo(
                    f"Error: Timeout: rule {rule_id} still {rule.get('state')} after {timeout:g} s", err=True
                )
                ctx.exit(1)
            time.sleep(interval)


def _explain_stuck(app: AppContext, rule: dict[str, Any]) -> None:
    """Why a watched rule ended STUCK: its error and its locks' last transfer errors, on stderr."""
    click.echo(f"rule {rule.get('id')} is STUCK: {rule.get('error') or 'no error recorded'}", err=True)
    try:
        failed = [lock for lock in app.client.lock_transfers(rule["id"]) if lock.get("last_error")]
    except AccessDenied:
        return
    for lock in failed[:SHOWN_LOCKS]:
        click.echo(
            f"  {lock['scope']}:{lock['name']} on {lock['rse']} after {lock['attempts']} attempts: "
            f"{lock['last_error']}",
            err=True,
        )

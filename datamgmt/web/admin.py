"""Admin pages of ``/ui/``: RSEs (attributes, protocols, distances, usage and its history),
accounts (identities, quotas against usage), subscriptions, and the approval queue.

They are for root and admins (:func:`datamgmt.web.common.require_admin`); anyone else gets
the AccessDenied page, as the same lookups over REST would.  An account's own page is also
open to that account (the policy's ``read_account_private``), so a user sees its own quotas
and identities and never another's.
"""

from __future__ import annotations

from datetime import datetime
from itertools import islice
from typing import Any

from flask import g, redirect, render_template, request, url_for
from markupsafe import Markup
from werkzeug.wrappers import Response

from datamgmt.api.context import authorize, unit_of_work
from datamgmt.core import identity as identities
from datamgmt.core import quota, rse_distance, subscription, usage_history
from datamgmt.core import rse as rses
from datamgmt.core import rule as rules
from datamgmt.core import status as status_report
from datamgmt.core.account import get_account, list_accounts
from datamgmt.exceptions import InputValidationError, SubscriptionNotFound
from datamgmt.web.charts import Series, line_chart
from datamgmt.web.common import PAGE, bp, current_page, page_of, require_admin

#: Usage snapshots drawn in an RSE's history chart (the newest ones).
HISTORY_POINTS = 500


@bp.get("/admin/rses")
def rse_list() -> str:
    with unit_of_work() as catalogue:
        require_admin(catalogue, "the RSEs page")
        found = rses.list_rses(catalogue)
        usage = {entry["rse"]: entry for entry in status_report.rse_usage(catalogue)}
    return render_template("rses.html", rses=found, usage=usage)


@bp.get("/admin/rses/<rse>")
def rse_page(rse: str) -> str:
    with unit_of_work() as catalogue:
        require_admin(catalogue, "RSE pages")
        detail = rses.get_rse_detail(catalogue, rse)
        info = detail.info
        details = {
            "attributes": dict(sorted(detail.attributes.items())),
            "protocols": detail.protocols,
            "distances": rse_distance.list_distances(catalogue, rse),
            "limits": rses.get_rse_limits(catalogue, rse),
            "usage": rses.get_rse_usage(catalogue, rse, per_account=True),
        }
        history = list(islice(usage_history.rse_usage_history(catalogue, info.id, rse, None), HISTORY_POINTS))
    return render_template("rse.html", rse=info, chart=usage_chart(rse, history), **details)


def usage_chart(rse: str, history: list[dict[str, Any]]) -> Markup:
    """Bytes used over time per source (the catalogue's count, what storage reports), placed by time."""
    if not history:
        return Markup("")
    times = [entry["updated_at"] for entry in history]
    start, end = min(times), max(times)
    span = (end - start).total_seconds() or 1.0
    series = []
    for source, css in (("rucio", "done"), ("storage", "storage")):
        points = sorted(
            (entry["updated_at"], entry["used"]) for entry in history if entry["source"] == source
        )
        if points:
            series.append(
                Series(
                    f"{source} used",
                    [used for _, used in points],
                    css,
                    [(when - start).total_seconds() / span for when, _ in points],
                )
            )
    return line_chart(f"Bytes used on {rse} over time", series, _when(start), _when(end), "B")


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


@bp.get("/admin/accounts")
def accounts() -> str:
    page = current_page()
    with unit_of_work() as catalogue:
        require_admin(catalogue, "the accounts page")
        found, more = page_of(list_accounts(catalogue), page)
        known = identities.identities_by_account(catalogue, [account.account for account in found])
        waiting = list(islice(rules.list_rules(catalogue, {"state": "WAITING_APPROVAL"}), PAGE))
    return render_template(
        "accounts.html", accounts=found, identities=known, waiting=waiting, page=page, more=more
    )


@bp.get("/accounts/<account>")
def account_page(account: str) -> str:
    """An account's identities and quotas against usage: for admins and the account itself."""
    with unit_of_work() as catalogue:
        authorize(catalogue, "read_account_private", account=account)
        info = get_account(catalogue, account)
        known = identities.list_identities(catalogue, account)
        local = quota.get_local_account_usage(catalogue, account)
        global_ = quota.get_global_account_usage(catalogue, account)
        rse_names = [rse.rse for rse in rses.list_rses(catalogue)] if g.admin else []
    return render_template(
        "account.html",
        account=info,
        identities=known,
        local=local,
        global_=global_,
        unlimited=quota.UNLIMITED,
        rse_names=rse_names,
    )


@bp.post("/accounts/<account>/quota")
def set_quota(account: str) -> Response:
    """Set (bytes, -1 for unlimited) or remove (empty) an account's quota on one RSE, as
    ``datamgmt-admin limit set`` does over REST, under the same policy actions."""
    rse, text = request.form.get("rse", ""), request.form.get("bytes", "").strip()
    try:
        nbytes = int(text) if text else None
    except ValueError as exc:
        raise InputValidationError(
            "The quota must be a whole number of bytes, -1 for unlimited, or empty."
        ) from exc
    with unit_of_work(read_only=False) as catalogue:
        get_account(catalogue, account)
        if nbytes is None:
            authorize(catalogue, "delete_local_account_limit", account=account, rse=rse)
            quota.delete_local_account_limit(catalogue, account, rse)
        else:
            authorize(catalogue, "set_local_account_limit", account=account, rse=rse)
            quota.set_local_account_limit(catalogue, account, rse, nbytes)
    return redirect(url_for("ui.account_page", account=account))


@bp.get("/admin/subscriptions")
def subscriptions() -> str:
    with unit_of_work() as catalogue:
        require_admin(catalogue, "the subscriptions page")
        try:
            found = subscription.list_subscriptions(catalogue)
        except SubscriptionNotFound:
            found = []
        rule_states: dict[tuple[str, str], dict[str, int]] = {}
        for row in subscription.subscription_rule_states(catalogue, "*"):
            if row["state"] is not None:
                rule_states.setdefault((row["account"], row["name"]), {})[row["state"].name] = row["count"]
    return render_template("subscriptions.html", subscriptions=found, rule_states=rule_states)

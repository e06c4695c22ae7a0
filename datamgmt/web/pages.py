"""The pages of ``/ui/``: sign-in, dashboard, browse and search, rules (explain, create, approve, delete).

Every page runs inside one catalogue unit of work and asks the same permission policy as REST
(:func:`datamgmt.api.context.authorize`), as the signed-in account.  Listings are paginated so
that a dataset of 10^5 files opens as quickly as one of ten.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from itertools import islice
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    g,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from datamgmt.api.context import authorize, unit_of_work
from datamgmt.api.login import userpass_login
from datamgmt.config import get_config
from datamgmt.core import did as dids
from datamgmt.core import (
    did_content,
    metadata_filter,
    request_history,
    rule_history,
    rule_update,
    transfer_stats,
)
from datamgmt.core import replica as replicas
from datamgmt.core import rule as rules
from datamgmt.core import scope as scopes
from datamgmt.core import status as status_report
from datamgmt.core.db.types import utcnow
from datamgmt.exceptions import (
    CannotAuthenticate,
    DatamgmtError,
    InputValidationError,
    TooManyLoginAttempts,
)
from datamgmt.web.charts import Series, bar_chart
from datamgmt.web.common import PAGE, bp, current_page, page_of
from datamgmt.web.oidc import oidc_enabled
from datamgmt.web.session import (
    check_csrf,
    csrf_token,
    install_sessions,
    sign_in,
    sign_out,
    signed_in_account,
)

#: Every page's Content-Security-Policy: own stylesheet and script only, no inline code, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

STATIC = Path(__file__).parent / "static"
#: The transfer tool's tape phases, shown in place of REPLICATING for a lock in one.
TAPE_PHASES = ("STAGING", "ARCHIVING")


def create_blueprint() -> Blueprint:
    return bp


@bp.record_once
def _setup(state: Any) -> None:
    install_sessions(state.app)
    state.app.jinja_env.globals["csrf_token"] = csrf_token


@bp.before_request
def _authenticate() -> Response | None:
    """Pages need a signed-in account (its token still valid); POSTs need the form's CSRF token."""
    if request.method == "POST":
        check_csrf()
    if request.endpoint in ("ui.login", "ui.static", "ui.oidc_start", "ui.oidc_callback"):
        return None
    visitor = signed_in_account()
    if visitor is None:
        return redirect(url_for("ui.login", next=request.full_path if request.method == "GET" else None))
    g.issuer, g.admin = visitor
    return None


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(DatamgmtError)
def _known_error(exc: DatamgmtError) -> tuple[str, int]:
    return render_template("error.html", title=exc.error_class, message=exc.message), exc.status


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[str, int]:
    return render_template("error.html", title=exc.name, message=exc.description), exc.code or 500


@bp.get("/static/<path:filename>")
def static(filename: str) -> Response:
    """The stylesheet and script; public, like the sign-in page that needs them."""
    return send_from_directory(STATIC, filename, max_age=3600)


# --- signing in --------------------------------------------------------------------------------
@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        return render_template("login.html", next=_local(request.args.get("next")), oidc=oidc_enabled())
    username, password = request.form.get("username", ""), request.form.get("password", "")
    try:
        issued = userpass_login(username, password, request.form.get("account") or None)
    except CannotAuthenticate:
        return render_template(
            "login.html", error="Wrong username or password.", next=request.form.get("next")
        ), 401
    except TooManyLoginAttempts as exc:
        page = render_template("login.html", error=exc.message, next=request.form.get("next"))
        return page, 429, {"Retry-After": str(exc.retry_after)}
    sign_in(issued.token)
    return redirect(_local(request.form.get("next")) or url_for("ui.dashboard"))


def _local(target: str | None) -> str | None:
    """Only a path on this site, never an absolute URL (no open redirect after signing in)."""
    if target and target.startswith("/ui") and not target.startswith("//"):
        return target
    return None


@bp.post("/logout")
def logout() -> Response:
    sign_out()
    return redirect(url_for("ui.login"))


# --- dashboard ---------------------------------------------------------------------------------
@bp.get("/")
def dashboard() -> str:
    with unit_of_work() as catalogue:
        authorize(catalogue, "read")
        report = status_report.status(catalogue, get_config().get_int("daemons", "heartbeat_timeout"))
        failures = request_history.list_attempts(catalogue, failed=True, limit=20)
        counts = transfer_stats.transfer_counts(catalogue)
        pairs = transfer_stats.failures_by_pair(catalogue, utcnow() - transfer_stats.WINDOWS["day"])
    template = "dashboard_body.html" if request.args.get("partial") else "dashboard.html"
    return render_template(
        template,
        report=report,
        failures=failures,
        counts=counts,
        pairs=pairs,
        rate_chart=_rate_chart(counts["rate"]),
    )


def _rate_chart(rate: list[dict[str, Any]]) -> Markup:
    """Attempts done and failed per hour of the last day, as stacked bars."""
    series = [
        Series("done", [b["done"] for b in rate], "done"),
        Series("failed", [b["failed"] for b in rate], "failed"),
    ]
    return bar_chart(
        "Transfer attempts per hour over the last day, done and failed",
        series,
        rate[0]["start"].strftime("%H:%M"),
        "now",
    )


# --- browse ------------------------------------------------------------------------------------
@bp.get("/scopes")
def scope_list() -> str:
    with unit_of_work() as catalogue:
        authorize(catalogue, "read")
        found = scopes.list_scopes_with_owner(catalogue)
    return render_template("scopes.html", scopes=found)


@bp.get("/scopes/<scope>")
def scope_dids(scope: str) -> str:
    """DIDs by name pattern and metadata filter, in the CLI's dialect (``run>3,type=dataset;…``)
    and through the same compiler as ``datamgmt did search`` and REST's search."""
    search = {
        "pattern": request.args.get("pattern") or "*",
        "filter": request.args.get("filter", ""),
        "type": request.args.get("type") or "all",
    }
    page = current_page()
    with unit_of_work() as catalogue:
        authorize(catalogue, "read")
        groups = metadata_filter.with_name_pattern(
            metadata_filter.parse_filter_string(search["filter"]), search["pattern"]
        )
        found, more = page_of(metadata_filter.list_dids(catalogue, scope, groups, search["type"]), page)
    return render_template(
        "dids.html",
        scope=scope,
        search=search,
        dids=found,
        page=page,
        more=more,
        types=metadata_filter.TYPE_CHOICES,
    )


@bp.get("/dids/<scope>/<path:name>")
def did_page(scope: str, name: str) -> str:
    page = current_page()
    with unit_of_work() as catalogue:
        authorize(catalogue, "read")
        did = dids.get_did(catalogue, scope, name)
        if did["type"] == "FILE":
            content, more = [], False
            files = list(replicas.list_replicas(catalogue, [{"scope": scope, "name": name}], all_states=True))
        else:
            content, more = page_of(did_content.list_content(catalogue, scope, name), page)
            files = []
        protecting = list(islice(rules.list_associated_rules(catalogue, scope, name), PAGE))
    return render_template(
        "did.html", did=did, content=content, files=files, rules=protecting, page=page, more=more
    )


# --- rules -------------------------------------------------------------------------------------
@bp.get("/rules")
def rule_list() -> str:
    filters = {
        name: request.args[name] for name in ("account", "state", "scope", "name") if request.args.get(name)
    }
    page = current_page()
    with unit_of_work() as catalogue:
        authorize(catalogue, "read")
        found, more = page_of(rules.list_rules(catalogue, filters), page)
    return render_template("rules.html", rules=found, filters=filters, page=page, more=more)


@bp.get("/rules/<rule_id>")
def rule_page(rule_id: str) -> str:
    page = current_page()
    with unit_of_work() as catalogue:
        authorize(catalogue, "read")
        rule = rules.get_rule(catalogue, rule_id)
        locks, more = page_of(rules.list_rule_locks(catalogue, rule_id), page)
        transfers = request_history.lock_transfers(catalogue, rule_id)
        for lock in locks:
            lock["transfer"] = transfers.get((lock["scope"], lock["name"], lock["rse_id"]), {})
        per_rse = _locks_per_rse(rules.list_rule_locks(catalogue, rule_id))
        history = list(islice(rule_history.rule_history(catalogue, rule_id), PAGE))
    phases = [phase for phase in TAPE_PHASES if any(states[phase] for states in per_rse.values())]
    return render_template(
        "rule.html",
        rule=rule,
        locks=locks,
        per_rse=per_rse,
        page=page,
        more=more,
        phases=phases,
        tape_phases=TAPE_PHASES,
        history=history,
    )


def _locks_per_rse(locks: Iterable[dict[str, Any]]) -> dict[str, Counter[str]]:
    """Locks per RSE and state; a replicating lock whose transfer is staging from tape or being
    archived to tape counts under that phase (STAGING, ARCHIVING) instead, where its time goes."""
    per_rse: dict[str, Counter[str]] = {}
    for lock in locks:
        state = lock["transfer_state"] if lock["transfer_state"] in TAPE_PHASES else lock["state"]
        per_rse.setdefault(lock["rse"], Counter())[state] += 1
    return dict(sorted(per_rse.items()))


@bp.post("/rules/<rule_id>/approve")
def approve(rule_id: str) -> Response:
    with unit_of_work(read_only=False) as catalogue:
        authorize(catalogue, "approve_rule", rule_id=rule_id)
        rules.approve_rule(catalogue, rule_id)
    return redirect(url_for("ui.rule_page", rule_id=rule_id))


@bp.post("/rules/<rule_id>/deny")
def deny(rule_id: str) -> Response:
    with unit_of_work(read_only=False) as catalogue:
        authorize(catalogue, "deny_rule", rule_id=rule_id)
        rules.deny_rule(catalogue, rule_id, request.form.get("comment") or None)
    return redirect(url_for("ui.rule_list"))


@bp.post("/rules/<rule_id>/lifetime")
def extend(rule_id: str) -> Response:
    """A new lifetime from now (seconds; empty: forever), as ``PUT /rules/<id>`` sets it."""
    text = request.form.get("lifetime", "").strip()
    try:
        options = {"lifetime": int(text) if text else None}
    except ValueError as exc:
        raise InputValidationError("The lifetime must be a whole number of seconds.") from exc
    with unit_of_work(read_only=False) as catalogue:
        authorize(catalogue, "update_rule", rule_id=rule_id, options=options)
        rule_update.update_rule(catalogue, rule_id, options)
    return redirect(url_for("ui.rule_page", rule_id=rule_id))


@bp.post("/rules/<rule_id>/delete")
def delete(rule_id: str) -> Response:
    """Rucio's soft delete, as over REST: the rule expires within the hour."""
    with unit_of_work(read_only=False) as catalogue:
        account = authorize(catalogue, "del_rule", rule_id=rule_id, purge_replicas=None)
        rule_update.delete_rule(catalogue, rule_id, issuer=account, soft=True)
    return redirect(url_for("ui.rule_page", rule_id=rule_id))


@bp.route("/rules/new", methods=["GET", "POST"])
def new_rule() -> Any:
    """Explain first (chosen RSEs, bytes to move, quota left), then create only on confirmation."""
    form = {name: request.values.get(name, "") for name in ("did", "copies", "rse_expression", "lifetime")}
    if request.method == "GET" or not form["did"]:
        return render_template("rule_new.html", form=form)
    arguments = _rule_arguments(form)
    with unit_of_work(read_only=request.form.get("confirm") != "yes") as catalogue:
        authorize(catalogue, "add_rule", account=g.issuer, scopes=[arguments["dids"][0]["scope"]])
        if request.form.get("confirm") != "yes":
            explained = rules.explain_rule(
                catalogue, arguments["dids"], g.issuer, arguments["copies"], arguments["rse_expression"]
            )
            return render_template("rule_new.html", form=form, explained=explained)
        (rule_id,) = rules.add_rule(catalogue, account=g.issuer, **arguments)
    return redirect(url_for("ui.rule_page", rule_id=rule_id))


def _rule_arguments(form: dict[str, str]) -> dict[str, Any]:
    scope, _, name = form["did"].partition(":")
    if not scope or not name:
        raise InputValidationError("The DID must be written SCOPE:NAME.")
    try:
        copies = int(form["copies"] or "1")
        lifetime = int(form["lifetime"]) if form["lifetime"] else None
    except ValueError as exc:
        raise InputValidationError("Copies and lifetime must be whole numbers.") from exc
    return {
        "dids": [{"scope": scope, "name": name}],
        "copies": copies,
        "rse_expression": form["rse_expression"],
        "lifetime": lifetime,
    }

"""The FTS3 REST routes (fts3.md §2, §7) over a :class:`~tests.fts3_double.double.Fts3Double`.

Besides FTS's own endpoints there is a small ``/_double`` control surface so a double running as a
subprocess can be steered and inspected the same way as one started in-process.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, Response, abort, g, request
from werkzeug.exceptions import Forbidden, HTTPException, NotFound

from .builder import BASE_ID, now
from .double import Fts3Double
from .store import JOB_TERMINAL

API_VERSION = {"major": 3, "minor": 13, "patch": 4}
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime(TIME_FORMAT)
    raise TypeError(f"cannot encode {type(value).__name__}")


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload, default=_encode), status=status, mimetype="application/json")


def _not_found(job_id: str) -> dict[str, str]:
    return {
        "job_id": job_id,
        "http_status": "404 Not Found",
        "http_message": f'No job with the id "{job_id}" has been found',
    }


def _token_subject(token: str) -> tuple[str, str]:
    """(issuer, subject) of a JWT, read without verification (the double trusts its callers)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims.get("iss", "")), str(claims.get("sub", "token"))
    except (IndexError, ValueError):
        return "", "token"


class _MergeLeadingSlashes:
    """Serve ``//jobs`` as ``/jobs``: the PyPI client puts a double slash in every path and Apache
    in front of the real server collapses it, while werkzeug would answer with a redirect."""

    def __init__(self, wsgi_app: Any) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        environ["PATH_INFO"] = re.sub(r"^/{2,}", "/", environ.get("PATH_INFO", "/"))
        return self.wsgi_app(environ, start_response)


def create_app(double: Fts3Double) -> Flask:
    app = Flask("fts3_double")
    app.wsgi_app = _MergeLeadingSlashes(app.wsgi_app)  # type: ignore[method-assign]

    def job(job_id: str) -> dict[str, Any] | None:
        """The job as the API shows it: none at all once ``forget_jobs`` purged the history."""
        return None if double.faults.forget_jobs else double.store.job(job_id)

    def credentials() -> dict[str, Any]:
        header = request.headers.get("Authorization", "")
        token = header[len("Bearer ") :] if header.startswith("Bearer ") else None
        if double.require_token is not None and token != double.require_token:
            raise Forbidden("The user does not belong to any authorized vo")
        if token:
            issuer, subject = _token_subject(token)
            dn, method, seed = subject, "oauth2", issuer + subject
        else:
            dn, method, seed = "anon", "unauthenticated", "anon"
        return {
            "user_dn": dn,
            "dn": [dn],
            "vos": [double.vo_name],
            "vos_id": [],
            "voms_cred": [],
            "delegation_id": hashlib.sha1(seed.encode()).hexdigest()[:16],
            "base_id": str(BASE_ID),
            "method": method,
            "is_root": False,
            "roles": [],
            "level": {"transfer": "vo"},
        }

    @app.before_request
    def inject_faults_and_authenticate() -> Response | None:
        if request.path.startswith("/_double"):
            return None
        g.stalled = double.faults.stall(request.method, request.path)
        status = double.faults.take_failure()
        if status is not None:
            abort(status, description="Injected failure")
        credentials()
        return None

    @app.teardown_request
    def count_stalled(_: BaseException | None) -> None:
        if g.get("stalled"):
            double.faults.stalled_request_served()

    @app.after_request
    def inject_delay(response: Response) -> Response:
        if not request.path.startswith("/_double"):
            time.sleep(double.faults.take_delay(request.method, request.path))
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        return _json(
            {"status": f"{error.code} {error.name}", "message": error.description}, error.code or 500
        )

    @app.get("/")
    def root() -> Response:
        return _json(
            {
                "delegation": {"major": 1, "minor": 0, "patch": 0},
                "api": API_VERSION,
                "core": API_VERSION,
                "schema": API_VERSION,
                "_links": {},
            }
        )

    @app.get("/whoami")
    def whoami() -> Response:
        return _json(credentials())

    @app.get("/delegation/<dlg_id>")
    def delegation(dlg_id: str) -> Response:
        if dlg_id != credentials()["delegation_id"]:
            raise Forbidden("The requested ID and the credentials ID do not match")
        # Far in the future, so X.509 clients consider their delegation valid and skip renewing it.
        return _json({"termination_time": now() + timedelta(days=365), "voms_attrs": []})

    @app.delete("/delegation/<dlg_id>")
    def drop_delegation(dlg_id: str) -> Response:
        return Response(status=204)

    @app.route("/jobs", methods=["POST", "PUT"])
    def submit() -> Response:
        body = request.get_json(force=True, silent=True)
        if body is None:
            abort(400, description="Badly formatted JSON request")
        return _json({"job_id": double.submit(body, credentials())})

    @app.get("/jobs")
    def list_jobs() -> Response:
        states = set(filter(None, request.args.get("state_in", "").split(","))) or None
        limit = min(int(request.args.get("limit", 500)), 500)
        dn = credentials()["user_dn"]
        jobs = [
            j
            for j in double.store.jobs()
            if j["user_dn"] == dn
            and not double.faults.forget_jobs
            and (j["job_state"] in states if states else j["job_state"] not in JOB_TERMINAL)
        ]
        return _json(jobs[:limit])

    @app.get("/jobs/<ids>")
    def get_jobs(ids: str) -> Response:
        wanted = [f for f in request.args.get("files", "").split(",") if f]
        entries = []
        for job_id in ids.split(","):
            found = job(job_id)
            if found is None:
                entries.append(_not_found(job_id))
                continue
            found["http_status"] = "200 Ok"
            if wanted:
                found["files"] = [{f: row.get(f) for f in wanted} for row in double.store.files(job_id) or []]
            entries.append(found)
        if len(entries) == 1:
            return _json(entries[0], 404 if "http_message" in entries[0] else 200)
        return _json(entries, 207 if any("http_message" in e for e in entries) else 200)

    @app.get("/jobs/<job_id>/files")
    def get_files(job_id: str) -> Response:
        rows = double.store.files(job_id) if job(job_id) is not None else None
        if rows is None:
            raise NotFound(_not_found(job_id)["http_message"])
        return _json(rows)

    @app.get("/jobs/<job_id>/files/<int:file_id>/retries")
    def get_retries(job_id: str, file_id: int) -> Response:
        if job(job_id) is None:
            raise NotFound(_not_found(job_id)["http_message"])
        return _json(double.store.retries(file_id))

    @app.get("/jobs/<job_id>/dm")
    def get_dm(job_id: str) -> Response:
        if job(job_id) is None:
            raise NotFound(_not_found(job_id)["http_message"])
        return _json([])

    @app.get("/jobs/<job_id>/<field>")
    def get_job_field(job_id: str, field: str) -> Response:
        found = job(job_id)
        if found is None:
            raise NotFound(_not_found(job_id)["http_message"])
        if field not in found:
            raise NotFound(f"No such field {field}")
        return _json(found[field])

    @app.delete("/jobs/<ids>")
    def cancel_jobs(ids: str) -> Response:
        entries = []
        for job_id in ids.split(","):
            result = double.cancel(job_id) if job(job_id) is not None else None
            if result is None:
                entries.append(_not_found(job_id))
                continue
            canceled, _, changed = result
            if not changed:
                canceled.update(http_status="304 Not Modified", http_message="The job is in a terminal state")
            else:
                canceled["http_status"] = "200 Ok"
            entries.append(canceled)
        if len(entries) == 1:
            return _json(entries[0], 404 if entries[0]["http_status"].startswith("404") else 200)
        return _json(entries, 200 if all(e["http_status"].startswith("2") for e in entries) else 207)

    # -- the double's own control surface ---------------------------------------------------
    @app.get("/_double/submissions")
    def submissions() -> Response:
        return _json(double.store.submissions())

    @app.post("/_double/faults")
    def set_faults() -> Response:
        body = request.get_json(force=True)
        if "fail_next" in body:
            double.faults.fail_next(int(body["fail_next"]), int(body.get("status", 500)))
        if "delay_next" in body:
            route = (body["method"], body["path"]) if "path" in body else None
            double.faults.delay_next(int(body["delay_next"]), float(body.get("seconds", 0)), route)
        if "stall_next" in body:
            route = (body["method"], body["path"]) if "path" in body else None
            double.faults.stall_next(int(body["stall_next"]), route)
        if body.get("release"):
            double.faults.release()
        for switch in ("hold_copies", "forget_jobs"):
            if switch in body:
                setattr(double.faults, switch, bool(body[switch]))
        if "fail_destination" in body:
            double.faults.fail_destination(body["fail_destination"])
        for delay in ("staging_seconds", "archive_seconds"):
            if delay in body:
                setattr(double.faults, delay, float(body[delay]))
        if "fail_staging" in body:
            double.faults.fail_staging(body["fail_staging"])
        if "never_archive" in body:
            double.faults.never_archive(body["never_archive"])
        return _json({"ok": True})

    return app

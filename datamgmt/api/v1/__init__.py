"""Version 1 of the REST API: one blueprint per area, at Rucio's paths."""

from __future__ import annotations

from flask import Blueprint


def blueprints() -> list[Blueprint]:
    from datamgmt.api.v1 import (
        accounts,
        auth,
        dids,
        health,
        heartbeats,
        locks,
        ping,
        publishing,
        redirect,
        replicas,
        requests,
        rses,
        rules,
        scopes,
        status,
        subscriptions,
    )

    return [
        ping.bp,
        health.bp,
        heartbeats.bp,
        auth.bp,
        accounts.bp,
        accounts.limits_bp,
        scopes.bp,
        rses.bp,
        dids.bp,
        replicas.bp,
        rules.bp,
        locks.bp,
        redirect.bp,
        requests.bp,
        publishing.bp,
        subscriptions.bp,
        status.bp,
    ]

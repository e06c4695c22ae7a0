"""Version 1 of the REST API: one blueprint per area, at Rucio's paths."""

from __future__ import annotations

from flask import Blueprint


def blueprints() -> list[Blueprint]:
    from datamgmt.api.v1 import (
        accounts,
        auth,
        bad_replicas,
        config,
        dataset_replicas,
        did_actions,
        did_queries,
        dids,
        exchange,
        health,
        heartbeats,
        identities,
        lifetime_exceptions,
        locks,
        meta_conventions,
        opendata,
        ping,
        publishing,
        redirect,
        replicas,
        requests,
        rse_qos,
        rses,
        rules,
        scopes,
        subscriptions,
        usage_history,
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
        bad_replicas.bp,
        dataset_replicas.bp,
        replicas.bp,
        rules.bp,
        locks.bp,
        redirect.bp,
        requests.bp,
        publishing.bp,
        subscriptions.bp,
        config.bp,
        lifetime_exceptions.bp,
        meta_conventions.bp,
        did_queries.bp,
        did_actions.bp,
        identities.bp,
        exchange.export_bp,
        exchange.import_bp,
        rse_qos.bp,
        opendata.bp,
        usage_history.bp,
    ]

"""Shell completion of RSE names, scopes and DIDs from the server, cached for a minute.

Completion runs on every <Tab>, so answers are cached in ``~/.datamgmt/completion.json``
(``DATAMGMT_COMPLETION_CACHE`` elsewhere) for :data:`TTL` seconds. It never fails loudly:
a server that cannot be reached, or no credentials, completes nothing instead of printing
a traceback into the shell.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem

from datamgmt.exceptions import DatamgmtError

TTL = 60
#: Completions offered at most: a shell menu of thousands helps nobody.
LIMIT = 200


def _cache_path() -> Path:
    return Path(os.environ.get("DATAMGMT_COMPLETION_CACHE", Path.home() / ".datamgmt" / "completion.json"))


def cached(key: str, fetch: Callable[[], list[str]]) -> list[str]:
    """``fetch()``'s answer, reused for TTL seconds across shell invocations."""
    path = _cache_path()
    try:
        entries: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        entries = {}
    now = time.time()
    entry = entries.get(key)
    if isinstance(entry, list) and len(entry) == 2 and now - entry[0] < TTL:
        return list(entry[1])
    values = fetch()[:LIMIT]
    entries = {name: value for name, value in entries.items() if now - value[0] < TTL}
    entries[key] = [now, values]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(entries))
    except OSError:
        pass  # completing still works, only uncached
    return values


def _client(ctx: click.Context) -> Any:
    from datamgmt.cli.context import AppContext  # deferred: context's DID type uses this module

    app = ctx.find_object(AppContext) or AppContext()
    root = ctx.find_root()
    app.config_path = app.config_path or root.params.get("config_path")
    return app.client


def _safely(ctx: click.Context, produce: Callable[[Any], list[str]]) -> list[CompletionItem]:
    try:
        return [CompletionItem(value) for value in produce(_client(ctx))]
    except (DatamgmtError, OSError, ValueError):
        return []


def complete_rse(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """RSE names starting with what was typed."""
    return _safely(
        ctx,
        lambda client: [
            name
            for name in cached(
                f"rses@{client.config.url}", lambda: sorted(row["rse"] for row in client.list_rses())
            )
            if name.startswith(incomplete)
        ],
    )


def complete_did(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    """``scope:`` for a partial scope, then ``scope:name`` for the DIDs whose names start so."""

    def produce(client: Any) -> list[str]:
        if ":" not in incomplete:
            scopes = cached(f"scopes@{client.config.url}", lambda: sorted(client.list_scopes()))
            return [f"{scope}:" for scope in scopes if scope.startswith(incomplete)]
        scope, prefix = incomplete.split(":", 1)
        names = cached(
            f"dids@{client.config.url}@{scope}:{prefix}",
            lambda: sorted(
                row["name"] if isinstance(row, dict) else row
                for row in client.search_dids(scope, "", name=f"{prefix}*", long=False)
            ),
        )
        return [f"{scope}:{name}" for name in names]

    return _safely(ctx, produce)

"""``--exist-ok``: creating what already exists, as asked, is success.

Scripts such as the README quickstart run again after a first run (or after one that failed
half-way).  Each create command with this flag turns the server's Duplicate into success, but
only after checking that what exists is what was asked for: a scope owned by another account,
or a protocol with another prefix, is still an error, since going on would act on something else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from datamgmt.exceptions import Duplicate

exist_ok_option = click.option(
    "--exist-ok",
    is_flag=True,
    help="Succeed without change when it already exists as given (for scripts run again).",
)


def create(exist_ok: bool, make: Callable[[], Any], existing: Callable[[Duplicate], str]) -> str | None:
    """Run ``make``; None when it created, else (with ``exist_ok``) ``existing(error)``: the
    sentence about what exists, or a raised error when that is not what was asked for."""
    try:
        make()
    except Duplicate as error:
        if not exist_ok:
            raise
        return existing(error)
    return None


def differs(error: Duplicate, why: str) -> Duplicate:
    """The error for something that exists, but not as asked: the server's message, explained."""
    return Duplicate(f"{error.message}, but {why}")

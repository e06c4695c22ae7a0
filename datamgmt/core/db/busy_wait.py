"""psycopg connections that busy-wait a moment for PostgreSQL's answer before they sleep.

A request thread that sends a statement sleeps in ``poll(2)`` until the answer comes, and on
this project's 2-core VMs its vCPU goes idle meanwhile: waking it again when the answer
arrives costs about as much as a short statement takes to run.  An admin call (``BEGIN`` with
its ``INSERT``, then ``COMMIT``) waits twice, GET one DID once.

Who may busy-wait, and for how long, is the process's :class:`BusyWaitPolicy`, installed with
:func:`set_policy`: the API's gunicorn worker lets a thread wait so while it is the only busy
one and the host has a CPU to spare (the rule of its wait for a kept-alive connection's next
request, :mod:`datamgmt.api.gunicorn_worker`).  Without a policy (daemons, the CLI, tests) every
wait sleeps at once, as psycopg's own does.  The wait itself stays psycopg's (its C ``wait_c``
and its handling of an interrupt): the busy wait only looks at the socket, without reading it,
before each wait for the server's answer, so that psycopg finds it ready.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable
from typing import Any, Protocol

import psycopg
from psycopg.abc import RV, PQGen
from psycopg.waiting import Wait


class BusyWaitPolicy(Protocol):
    """Whether a thread may busy-wait now, and the account of the time it spent doing so."""

    def allowance(self) -> float:
        """Seconds the calling thread may busy-wait now for one answer (0: sleep at once)."""

    def spent(self, seconds: float) -> None:
        """Count ``seconds`` of busy-waiting by one thread."""


_policy: BusyWaitPolicy | None = None


def set_policy(policy: BusyWaitPolicy | None) -> None:
    """Install this process's policy (None: never busy-wait)."""
    global _policy  # noqa: PLW0603  # one policy per process, set by its server at start-up
    _policy = policy


def allowance() -> float:
    """Seconds the calling thread may busy-wait now for one answer (0 without a policy)."""
    policy = _policy
    return policy.allowance() if policy is not None else 0.0


def _spent(seconds: float) -> None:
    policy = _policy
    if policy is not None:
        policy.spent(seconds)


class BusyWaitingConnection(psycopg.Connection[Any]):
    """A psycopg connection whose waits for the server's answer begin with a busy wait, as the
    process's policy allows; otherwise psycopg's own connection."""

    def wait(self, gen: PQGen[RV], *args: Any, **kwargs: Any) -> RV:
        seconds = allowance()
        if seconds <= 0:
            return super().wait(gen, *args, **kwargs)
        return super().wait(_looking_first(gen, self.pgconn.socket, seconds), *args, **kwargs)


def _looking_first(gen: PQGen[RV], fileno: int, seconds: float) -> PQGen[RV]:
    """``gen``, with a busy wait of up to ``seconds`` for the socket to become readable before
    each wait it asks for the server's answer (``Wait.R``)."""
    poller = select.poll()
    poller.register(fileno, select.POLLIN)
    try:
        state = next(gen)
        while True:
            if state == Wait.R:
                _spent(until_readable(poller, seconds))
            state = gen.send((yield state))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]  # the generator's result, as psycopg's wait returns it


def until_readable(poller: select.poll, allowance: float, still: Callable[[], bool] = lambda: True) -> float:
    """Look at ``poller``'s socket without sleeping until it is readable, ``allowance`` seconds
    have passed or ``still()`` is false; the seconds it looked.  Each look releases the GIL."""
    started = time.perf_counter()
    deadline = started + allowance
    now = started
    while now < deadline and still() and not poller.poll(0):
        now = time.perf_counter()
    return now - started

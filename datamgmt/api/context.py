"""Per-request state: the catalogue transaction, the issuer, and the permission check.

A request costs one transaction, not two: authentication opens the request's first unit of
work (:func:`in_first_unit`) and the view's first :func:`unit_of_work` of the same kind
continues it, so the token is checked in the same snapshot the view then reads.

A request whose database connection was lost is repeated here, once, when that is safe:
:class:`CatalogueFlask` runs the request's authentication or its view a second time if the
unit of work that failed is ``retriable`` (its connection was lost before it had run a
statement, or it only read) and no other unit of that step has committed a write.
Anything else is the 503 with ``Retry-After`` that :mod:`datamgmt.api.errors` answers,
and the client decides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from functools import cached_property
from typing import Any, TypeVar

from flask import Flask, current_app, g, request
from sqlalchemy.orm import Session

from datamgmt.core.db.plans import one_write as declare_one_write
from datamgmt.core.db.session import transaction
from datamgmt.core.permission import has_permission
from datamgmt.core.vo import DEFAULT_VO, catalogue_url, check_storage_apart, is_registered, vo_name
from datamgmt.exceptions import AccessDenied, CannotAuthenticate, DatabaseUnavailable, DatamgmtError

log = logging.getLogger(__name__)
T = TypeVar("T")
#: ``g`` flag: a unit of work of the current step committed a write, so repeating the step could repeat it.
_WROTE = "datamgmt_wrote"
#: ``g`` key: the unit of work authentication opened, (stack, session, read_only), until a view takes it.
_FIRST = "datamgmt_first_unit"


def _default_read_only() -> bool:
    return request.method in ("GET", "HEAD")


def current_vo() -> str:
    """The VO this request works in: its ``X-Rucio-VO`` header on a multi-VO instance, else ``def``.

    Every unit of work of the request opens on that VO's catalogue (core/vo.py), so a token,
    an account or a DID of one VO is simply absent from every other.  A VO not served here
    is 401 ``CannotAuthenticate``: the caller cannot be anybody there.
    """
    vo: str | None = g.get("vo")
    if vo is None:
        vo = _requested_vo()
        g.vo = vo
    return vo


def _requested_vo() -> str:
    header = request.headers.get("X-Rucio-VO", "")
    if not header or header == DEFAULT_VO or not current_app.config.get("MULTI_VO"):
        return DEFAULT_VO
    vo_name(header)
    if not is_registered(header, current_app.config.get("DATABASE_URL")):
        raise CannotAuthenticate(f"Cannot authenticate: VO {header} is not served here")
    return header


def keep_storage_apart(session: Session, rses: Iterable[str]) -> None:
    """On a multi-VO instance, refuse protocols of ``rses`` that reach another VO's storage
    (core/vo.py): call it after any change to their protocols, in the same unit of work."""
    if current_app.config.get("MULTI_VO"):
        session.flush()
        for rse in rses:
            check_storage_apart(session, rse, current_vo(), current_app.config.get("DATABASE_URL"))


def _open(read_only: bool) -> tuple[ExitStack, Session]:
    stack = ExitStack()
    url = catalogue_url(current_app.config.get("DATABASE_URL"), current_vo())
    session = stack.enter_context(transaction(url, read_only=read_only))
    return stack, session


@contextmanager
def unit_of_work(read_only: bool | None = None, one_write: bool = False) -> Iterator[Session]:
    """One transaction on the app's catalogue, committed when the block succeeds.

    GET and HEAD requests read only unless a view says otherwise (logging in writes a
    token), so on SQLite they never queue behind the daemons' writes.  The first unit of a
    request continues the one authentication opened when both are of the same kind.
    ``one_write``: the block makes exactly one write and refuses nothing after it, so on
    PostgreSQL the write commits as it runs, without a ``COMMIT`` round trip (core/db/plans.py).
    """
    if read_only is None:
        read_only = _default_read_only()
    first = g.pop(_FIRST, None)
    if first is not None and first[2] == read_only:
        stack, session = first[0], first[1]
    else:
        if first is not None:
            first[0].close()  # it only read the caller's credentials
        stack, session = _open(read_only)
    with stack:
        if one_write:
            declare_one_write(session)
        yield session
    if not read_only:
        setattr(g, _WROTE, True)


def in_first_unit(work: Callable[[Session], T]) -> T:
    """Run ``work`` (authentication) in the request's first unit of work, left open for the view.

    A failure ends the unit here, with the same translation of database errors as any unit.
    """
    stack, session = _open(_default_read_only())
    try:
        result = work(session)
    except BaseException as exc:
        stack.__exit__(type(exc), exc, exc.__traceback__)  # raises the translated error, if any
        raise
    setattr(g, _FIRST, (stack, session, _default_read_only()))
    return result


def end_first_unit(_exc: BaseException | None = None) -> None:
    """Teardown: end a first unit that no view took (the view failed early or needed none)."""
    first = g.pop(_FIRST, None)
    if first is not None:
        try:
            first[0].close()
        except DatamgmtError as exc:
            log.warning(
                "request %s: ending its unused unit of work failed: %s", g.get("request_id", "-"), exc
            )


def once_more_if_safe(step: Callable[[], T]) -> T:
    """Run a request step; after a retriable database drop, run it once more on a fresh connection."""
    g.pop(_WROTE, None)
    try:
        return step()
    except DatabaseUnavailable as exc:
        if not exc.retriable or g.get(_WROTE):
            raise
        log.warning("request %s: %s; repeating it once", g.get("request_id", "-"), exc.message)
        return step()


class CatalogueFlask(Flask):
    """Flask whose authentication and view steps survive one dropped database connection."""

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Flask asks ``inspect`` whether each hook and view is a coroutine function on every
        request (seven times for a small GET); the answer never changes, so it is kept."""
        wrapped = self._sync.get(func)
        if wrapped is None:
            wrapped = self._sync[func] = super().ensure_sync(func)
        return wrapped

    @cached_property
    def _sync(self) -> dict[Callable[..., Any], Callable[..., Any]]:
        return {}

    def preprocess_request(self) -> Any:
        return once_more_if_safe(super().preprocess_request)

    def dispatch_request(self) -> Any:
        return once_more_if_safe(super().dispatch_request)


def issuer() -> str | None:
    """The authenticated account of this request (None on public endpoints)."""
    account: str | None = g.get("issuer")
    return account


def authorize(session: Session, action: str, **kwargs: Any) -> str:
    """Raise AccessDenied unless the issuer may do ``action``; returns the issuer."""
    account = issuer()
    if account is None or not has_permission(session, account, action, kwargs):
        raise AccessDenied(f"Account {account} can not {action.replace('_', ' ')}.")
    return account

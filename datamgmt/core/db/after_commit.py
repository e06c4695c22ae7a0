"""Work that must happen only once a session's changes are visible to everyone: after its commit.

Cache generations are the example: a worker that renews one before the commit could re-cache an
answer read from the old rows in between.  A rollback forgets what was pending.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

_PENDING = "datamgmt.after_commit"


def on_next_commit(session: Session, name: str, action: Callable[[], None]) -> None:
    """Run ``action`` once after this session's next commit; ``name`` keeps one of each kind."""
    session.info.setdefault(_PENDING, {})[name] = action


def is_pending(session: Session, name: str) -> bool:
    """Whether ``name`` waits for this session's commit (its changes are not visible to others yet)."""
    return name in session.info.get(_PENDING, {})


def run_pending(session: Session) -> None:
    """Run what waits for this session's commit: after a commit, or in place of one when the
    session has no transaction to commit (its changes are visible to everyone already)."""
    for action in session.info.pop(_PENDING, {}).values():
        action()


def _forget_pending(session: Session, _previous_transaction: object) -> None:
    session.info.pop(_PENDING, None)


# Listened to once for every session, rather than per session on its first pending action:
# registering instance listeners cost more than the admin call that asked for them.
event.listen(Session, "after_commit", run_pending)
event.listen(Session, "after_soft_rollback", _forget_pending)

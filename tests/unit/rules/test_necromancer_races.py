"""A rule removed while the necromancer decides what becomes of the BAD replica it locks
(PostgreSQL: SQLite runs one writer at a time, so the interleaving cannot arise there).

The necromancer read whether rules held the replica (``lock_cnt``) without a lock, then moved
the replica from BAD to COPYING, waiting behind the removal that had released the rule's lock.
Once the removal committed, there was no lock to move and no rule to queue the copy for:
``min()`` of no holders failed the whole batch.  The holders are now read from the locks once
the replica is taken, and see the locks gone: nobody holds the replica, so it goes to the reaper.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from datamgmt.core import necromancer, rule_update
from datamgmt.core import rule as rules
from datamgmt.core.db.constants import BadFilesStatus, ReplicaState
from datamgmt.core.db.models import Request
from datamgmt.core.db.session import transaction
from datamgmt.core.replica_state import declare
from tests.unit.rules.conftest import Catalogue, behind_a_lock
from tests.unit.rules.test_rule_removal_races import postgresql_only


def _revive(session: Session) -> dict[str, int]:
    """One necromancer pass over every BAD replica, as the daemon runs it."""
    return necromancer.revive(session, necromancer.bad_replicas(session, 100))


def test_a_rule_removed_while_the_necromancer_decides_leaves_its_bad_replica_to_the_reaper(
    cat: Catalogue, session: Session, db: str
) -> None:
    postgresql_only(db)
    f = cat.files(1, on=("R1", "R2"))[0]
    (rule_id,) = rules.add_rule(session, [f], "jdoe", 1, "R1")
    assert declare(session, "R1", [(f["scope"], f["name"])], BadFilesStatus.BAD, "checksum", "root") == []
    session.commit()
    with transaction(db) as api:
        rule_update.delete_rule(api, rule_id)  # the lock gone and lock_cnt lowered, not committed
        revival = behind_a_lock(api, db, _revive)
    assert revival() == {"recovering": 0, "obsolete": 1, "lost": 0}
    replica = cat.replica(f, "R1")
    assert (replica.state, replica.lock_cnt, replica.tombstone.year) == (ReplicaState.UNAVAILABLE, 0, 1970)
    assert session.scalars(select(Request)).all() == [], "a copy was queued for a rule that is gone"
    assert _revive(session) == {"recovering": 0, "obsolete": 0, "lost": 0}

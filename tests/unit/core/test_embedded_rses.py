"""The embedded service's LOCAL-A and LOCAL-B are scratch disks every account may upload to."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from datamgmt.core.account import add_account
from datamgmt.core.permission import has_permission
from datamgmt.core.rse import list_rse_attributes
from datamgmt.core.scope import add_scope
from datamgmt.embedded import LOCAL_RSES, ensure_local_rses


def test_local_rses_take_user_uploads(session: Session, db: str, tmp_path: Path) -> None:
    ensure_local_rses(tmp_path)
    ensure_local_rses(tmp_path)  # idempotent
    add_account(session, "jdoe", "USER")
    add_scope(session, "user.jdoe", "jdoe")
    add_account(session, "other", "USER")
    session.commit()
    for rse in LOCAL_RSES:
        assert list_rse_attributes(session, rse)["type"] == "SCRATCHDISK"
        assert (tmp_path / rse).is_dir()
        assert has_permission(session, "jdoe", "add_replicas", {"scopes": ["user.jdoe"], "rse": rse})
        assert not has_permission(session, "other", "add_replicas", {"scopes": ["user.jdoe"], "rse": rse})

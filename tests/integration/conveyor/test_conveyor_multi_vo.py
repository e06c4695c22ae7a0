"""The conveyor with the local tool on a multi-VO instance: each VO's transfers run on its own
catalogue and tool, and the same file names in two VOs arrive with each VO's own bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from datamgmt.core import replica
from datamgmt.core import vo as vos
from datamgmt.core.db.constants import ReplicaState
from datamgmt.core.db.session import transaction
from datamgmt.daemons.conveyor import tools
from datamgmt.daemons.conveyor.finisher import Finisher
from datamgmt.daemons.conveyor.poller import Poller
from datamgmt.daemons.conveyor.submitter import Submitter
from datamgmt.rse.lfn2pfn import hash_path
from tests.integration.conveyor.test_conveyor_posix import assert_all_done, conveyor_env, drain  # noqa: F401
from tests.unit.conveyor.catalogue import (
    SCOPE,
    FileSpec,
    add_posix_replica,
    add_posix_rse,
    add_request,
    ensure_scope,
    random_file,
)
from tests.vo_catalogues import multi_vo  # noqa: F401 (a fixture)

pytestmark = pytest.mark.integration


def _layout(session: Session, root: Path) -> list[FileSpec]:
    """SRC holds 3 files that DEST wants, as in test_conveyor_posix."""
    add_posix_rse(session, "SRC", root / "SRC")
    dest_id = add_posix_rse(session, "DEST", root / "DEST")
    ensure_scope(session)
    files = [random_file(f"file{i}") for i in range(3)]
    for spec in files:
        add_posix_replica(session, "SRC", root / "SRC", spec)
        add_request(session, spec, dest_id)
    replica.add_replicas(session, "DEST", [s.record() for s in files], "root", state=ReplicaState.COPYING)
    return files


def _conveyor(url: str, vo: str) -> list[Submitter | Poller | Finisher]:
    """The three conveyor daemons of ``vo``, the abc ones built first: a worker built before
    another VO's must not take that VO's local tool (it did, when the VO was set after
    construction)."""
    return [Submitter(db_url=url, vo=vo), Poller(db_url=url, vo=vo), Finisher(db_url=url, vo=vo)]


def test_each_vo_moves_its_own_files(
    multi_vo: str,  # noqa: F811
    session: Session,
    root: str,
    tmp_path: Path,
    conveyor_env,  # noqa: F811
) -> None:
    conveyor_env(transfertool="local")
    vos.add_vo(session, "abc", None, None, "root", multi_vo)
    ours = _layout(session, tmp_path / "def")
    session.commit()
    abc = vos.catalogue_url(multi_vo, "abc")
    with transaction(abc) as vo_session:
        theirs = _layout(vo_session, tmp_path / "abc")

    theirs_conveyor = _conveyor(multi_vo, "abc")
    drain(multi_vo, *_conveyor(multi_vo, "def"))
    drain(abc, *theirs_conveyor)

    assert_all_done(multi_vo, ours, tmp_path / "def" / "DEST")
    assert_all_done(abc, theirs, tmp_path / "abc" / "DEST")
    assert tools.local_tool(abc, vo="abc") is not tools.local_tool(multi_vo)
    for mine, other in zip(ours, theirs, strict=True):
        assert mine.name == other.name
        ours_bytes = (tmp_path / "def" / "DEST" / hash_path(SCOPE, mine.name)).read_bytes()
        assert ours_bytes != (tmp_path / "abc" / "DEST" / hash_path(SCOPE, other.name)).read_bytes()

"""every replica stores its path, unique per RSE

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:00:00

Until 0001 a replica's ``path`` was NULL unless a caller chose one, and a chosen path could name
another replica's file (issue 15, defect 2). From here every row carries the path the protocols
use and ``(rse_id, path)`` is unique:

* deterministic RSEs: every row gets its RSE's lfn2pfn algorithm's path. A row whose stored path
  differed is logged: its catalogue entry now points where the algorithm puts the file;
* non-deterministic RSEs: a stored path keeps its spelling without the one leading slash the
  protocols ignore; a missing one gets the algorithm's path (where transfers wrote it).

If two replicas of one RSE still share a path the upgrade stops and lists them: that is the
state the constraint forbids, and only an operator can tell which file is whose.
"""

import logging

import sqlalchemy as sa
from alembic import op

from datamgmt.rse.lfn2pfn import DEFAULT_ALGORITHM, lfn2path

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

PAGE = 10_000
log = logging.getLogger("alembic.runtime.migration")

rses = sa.table("rses", sa.column("id", sa.String), sa.column("deterministic", sa.Boolean))
attributes = sa.table(
    "rse_attr_map", sa.column("rse_id", sa.String), sa.column("key", sa.String), sa.column("value", sa.String)
)
replicas = sa.table(
    "replicas",
    sa.column("scope", sa.String),
    sa.column("name", sa.String),
    sa.column("rse_id", sa.String),
    sa.column("path", sa.String),
)


def _new_path(scope: str, name: str, path: str | None, deterministic: bool, algorithm: str) -> str:
    if deterministic or not path:
        return lfn2path(scope, name, algorithm)
    return path[1:] if path.startswith("/") else path


def _backfill_rse(connection: sa.Connection, rse_id: str, deterministic: bool, algorithm: str) -> int:
    """Rewrite one RSE's paths page by page (keyset on the key); returns how many chosen paths moved."""
    update = (
        sa.update(replicas)
        .where(
            replicas.c.scope == sa.bindparam("s"),
            replicas.c.name == sa.bindparam("n"),
            replicas.c.rse_id == rse_id,
        )
        .values(path=sa.bindparam("p"))
    )
    after = ("", "")
    moved = 0
    while True:
        page = connection.execute(
            sa.select(replicas.c.scope, replicas.c.name, replicas.c.path)
            .where(replicas.c.rse_id == rse_id, sa.tuple_(replicas.c.scope, replicas.c.name) > after)
            .order_by(replicas.c.scope, replicas.c.name)
            .limit(PAGE)
        ).all()
        if not page:
            return moved
        changes = []
        for scope, name, path in page:
            new = _new_path(scope, name, path, deterministic, algorithm)
            if new != path:
                changes.append({"s": scope, "n": name, "p": new})
                moved += path is not None and (path[1:] if path.startswith("/") else path) != new
        if changes:
            connection.execute(update, changes)
        after = (page[-1].scope, page[-1].name)


def _refuse_shared_paths(connection: sa.Connection) -> None:
    shared = connection.execute(
        sa.select(replicas.c.rse_id, replicas.c.path, sa.func.count().label("replicas"))
        .group_by(replicas.c.rse_id, replicas.c.path)
        .having(sa.func.count() > 1)
        .limit(10)
    ).all()
    if shared:
        examples = ", ".join(
            f"rse_id={row.rse_id} path={row.path!r} ({row.replicas} replicas)" for row in shared
        )
        raise RuntimeError(f"replicas share a storage path; resolve these before upgrading: {examples}")


def upgrade() -> None:
    connection = op.get_bind()
    chosen = dict(
        connection.execute(
            sa.select(attributes.c.rse_id, attributes.c.value).where(attributes.c.key == "lfn2pfn_algorithm")
        )
        .tuples()
        .all()
    )
    for rse_id, deterministic in connection.execute(sa.select(rses.c.id, rses.c.deterministic)).all():
        moved = _backfill_rse(
            connection, rse_id, bool(deterministic), chosen.get(rse_id) or DEFAULT_ALGORITHM
        )
        if moved:
            log.warning(
                "RSE %s: %d replicas had a caller-chosen path; they now use the algorithm's", rse_id, moved
            )
    _refuse_shared_paths(connection)
    with op.batch_alter_table("replicas", schema=None) as batch_op:
        batch_op.alter_column("path", existing_type=sa.String(length=1024), nullable=False)
        batch_op.create_index(batch_op.f("ix_replicas_rse_id_path"), ["rse_id", "path"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("replicas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_replicas_rse_id_path"))
        batch_op.alter_column("path", existing_type=sa.String(length=1024), nullable=True)

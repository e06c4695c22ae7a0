"""Catalogue set-up for conveyor tests: RSEs with protocols, files with replicas, requests.

Requests are inserted directly here (the conveyor's input), so the conveyor's own tests do not
depend on how rules create them; the end-to-end tests go through rules instead.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from datamgmt.core import replica, rse, scope
from datamgmt.core.db.constants import RequestState
from datamgmt.core.db.models import Request
from datamgmt.rse.lfn2pfn import hash_path

SCOPE = "conv"


def tpc_domains(read: int = 1, write: int = 1) -> dict[str, dict[str, int]]:
    return {
        "lan": {"read": 1, "write": 1, "delete": 1},
        "wan": {
            "read": 1,
            "write": 1,
            "delete": 1,
            "third_party_copy_read": read,
            "third_party_copy_write": write,
        },
    }


def add_posix_rse(session: Session, name: str, root: Path, rse_type: str = "DISK", **protocol: Any) -> str:
    """An RSE whose storage is the directory ``root`` (scheme ``file``)."""
    rse_id = rse.add_rse(session, name, rse_type=rse_type)
    rse.add_protocol(
        session,
        name,
        {"scheme": "file", "prefix": str(root), "impl": "posix", "domains": tpc_domains(), **protocol},
    )
    return rse_id


@dataclass(frozen=True)
class FileSpec:
    name: str
    data: bytes

    @property
    def adler32(self) -> str:
        return f"{zlib.adler32(self.data):08x}"

    def record(self) -> dict[str, Any]:
        return {"scope": SCOPE, "name": self.name, "bytes": len(self.data), "adler32": self.adler32}


def ensure_scope(session: Session, account: str = "root") -> None:
    from datamgmt.core.db.models import Scope

    if session.get(Scope, SCOPE) is None:
        scope.add_scope(session, SCOPE, account)


def add_posix_replica(
    session: Session, rse_name: str, root: Path, spec: FileSpec, *, write: bool = True
) -> None:
    """Register ``spec`` on a posix RSE and (unless ``write`` is False) put its bytes at the hash path."""
    if write:
        path = root / hash_path(SCOPE, spec.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(spec.data)
    replica.add_replicas(session, rse_name, [spec.record()], "root")


def random_file(name: str, size: int = 4096) -> FileSpec:
    return FileSpec(name, os.urandom(size))


def add_request(session: Session, spec: FileSpec, dest_rse_id: str, **values: Any) -> str:
    """A QUEUED transfer request for ``spec`` to ``dest_rse_id``."""
    row = Request(
        scope=SCOPE,
        name=spec.name,
        dest_rse_id=dest_rse_id,
        state=RequestState.QUEUED,
        bytes=len(spec.data),
        adler32=spec.adler32,
        **values,
    )
    session.add(row)
    session.flush()
    return row.id

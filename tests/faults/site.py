"""The catalogue a fault run or a load run starts from: accounts, scopes and posix RSEs.

Set up directly in ``core``, as an operator's bootstrap would be; everything after this goes
through the REST API.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datamgmt.core import account, identity, quota, rse, rse_distance, scope
from datamgmt.core.bootstrap import bootstrap
from datamgmt.core.db.session import transaction
from tests.unit.conveyor.catalogue import add_posix_rse

ROOT_PASSWORD = "faults-root-pw"
SOURCE = "SRC"
DESTINATIONS = ("DST1", "DST2", "DST3")
#: Two ordinary accounts, each with a scope of its own (``user.<name>``), for the hostile-user runs.
USERS = ("alice", "bob")
SCOPE = "data"
#: The RSE attribute that opens an RSE to users' own registrations (docs/permissions.md).
USER_WRITE = ("type", "USERDISK")


@dataclass(frozen=True)
class Site:
    db_url: str
    storage: Path

    def rse_dir(self, name: str) -> Path:
        return self.storage / name

    @staticmethod
    def password(account_name: str) -> str:
        return ROOT_PASSWORD if account_name == "root" else f"{account_name}-secret-pw"


def populate(db_url: str, storage: Path) -> Site:
    """root, the users, scope ``data`` (root's) and one scope per user; SRC and DST1..3 on disk."""
    site = Site(db_url, storage)
    with transaction(db_url) as session:
        bootstrap(session, "root", ROOT_PASSWORD, "21.T99999")
        scope.add_scope(session, SCOPE, "root")
        for name in (SOURCE, *DESTINATIONS):
            site.rse_dir(name).mkdir(parents=True, exist_ok=True)
            add_posix_rse(session, name, site.rse_dir(name))
            rse.add_rse_attribute(session, name, USER_WRITE[0], USER_WRITE[1])
        for source in (SOURCE, *DESTINATIONS):
            for destination in DESTINATIONS:
                if source != destination:
                    rse_distance.set_distance(session, source, destination, 1)
        for user in USERS:
            account.add_account(session, user, "USER")
            identity.add_account_identity(
                session, user, "USERPASS", user, password=site.password(user), default=True
            )
            scope.add_scope(session, f"user.{user}", user)
            for name in (SOURCE, *DESTINATIONS):
                quota.set_local_account_limit(session, user, name, 10**12)
    return site

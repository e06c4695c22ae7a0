"""Scale-out: the service in the shape operators deploy it, end to end, on PostgreSQL.

gunicorn with 2 workers, **two instances of every daemon** (hermes included, delivering to a
webhook) as separate OS processes (:class:`tests.faults.cluster.Cluster`), once with the
``local`` transfer tool and once with ``fts3`` against the FTS3 double.  The workload goes
through the REST API and the storage protocol as users drive it: files uploaded to SRC and
registered in datasets, a 2-copy rule on every dataset, then half of the rules deleted.  Then
``datamgmt-admin check --storage`` must find nothing, every kept file must have exactly two
copies (on disk, checksummed), every deleted rule's copies must be gone from the catalogue and
from storage, FTS must have taken no file twice, and the outbox must have reached the webhook,
each message once.

``SCALE_OUT_FILES`` sets the number of files: 1,000 by default, which ``make test`` (and so CI)
runs; measured on 2 cores shared with other work, both runs took 3 to 3.5 minutes together
(each 75 to 110 s; ``local`` copies its 2,000 files at about 70/s).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from datamgmt.core.db.constants import ReplicaState, RuleState
from datamgmt.core.db.models import RSE, Message, Replica, Rule
from datamgmt.core.db.session import transaction
from datamgmt.daemons.launcher import DAEMONS
from datamgmt.rse.lfn2pfn import hash_path
from datamgmt.rse.protocols import create_protocol, select_protocol
from datamgmt.rse.upload import upload_file
from tests.conftest import clean_catalogue
from tests.faults.checks import check, examples, quiesce
from tests.faults.cluster import running, submitted_twice
from tests.faults.site import DESTINATIONS, SCOPE, SOURCE, Site, populate
from tests.faults.workload import client_for
from tests.integration.daemons.webhook_receiver import webhook_receiver

pytestmark = [pytest.mark.integration, pytest.mark.long]

FILES = int(os.environ.get("SCALE_OUT_FILES", "1000"))
PER_DATASET = 50
FILE_SIZE = 1024
SECRET = "scale-out-webhook-secret"


def wait_until(what: str, done: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds:.0f} s"
        time.sleep(1)


def count(db_url: str, model: type, *where: object) -> int:
    with transaction(db_url, read_only=True) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def upload_dataset(site: Site, api_url: str, workdir: Path, dataset: str, names: list[str]) -> None:
    """What a user's upload does: bytes to SRC through its protocol, then replicas and attachment."""
    client = client_for(site, api_url, "root", workdir)
    info = client.get_rse(SOURCE)
    protocol = create_protocol(select_protocol(info["protocols"], "write", "wan"))
    client.add_did(SCOPE, dataset, "DATASET")
    files = []
    for name in names:
        local = workdir / name
        local.write_bytes(os.urandom(FILE_SIZE))
        pfn = protocol.lfns2pfns([{"scope": SCOPE, "name": name}])[f"{SCOPE}:{name}"]
        result = upload_file(protocol, str(local), pfn)
        local.unlink()
        files.append(
            {
                "scope": SCOPE,
                "name": name,
                "bytes": result.size,
                "adler32": result.adler32,
                "md5": result.md5,
                "state": "A",
            }
        )
    client.add_replicas(SOURCE, files)
    client.attach(SCOPE, dataset, [(SCOPE, name) for name in names])


def copies_on_destinations(db_url: str) -> Counter[str]:
    """File name → AVAILABLE replicas on the destination RSEs."""
    with transaction(db_url, read_only=True) as session:
        rows = session.execute(
            select(Replica.name)
            .join(RSE, RSE.id == Replica.rse_id)
            .where(RSE.rse.in_(DESTINATIONS), Replica.state == ReplicaState.AVAILABLE)
        ).scalars()
        return Counter(rows)


@pytest.mark.parametrize("tool", ["local", "fts3"])
def test_scale_out_workload_completes_and_checks_clean(db_url: str, tmp_path: Path, tool: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("the scale-out test runs on PostgreSQL: set DATAMGMT_TEST_DB_URL")
    clean_catalogue(db_url)
    site = populate(db_url, tmp_path / "storage")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    names = [f"{tool}-f{i}" for i in range(FILES)]
    datasets = {
        f"{tool}-ds{i // PER_DATASET}": names[i : i + PER_DATASET] for i in range(0, FILES, PER_DATASET)
    }
    hermes = {
        "DATAMGMT_HERMES_WEBHOOK_URL": "",
        "DATAMGMT_HERMES_WEBHOOK_SECRET": SECRET,
        "DATAMGMT_HERMES_BROKER_URL": "",
        "DATAMGMT_CONVEYOR_TRANSFERTOOL": tool,
    }
    figures: dict[str, float] = {}
    with webhook_receiver() as receiver:
        hermes["DATAMGMT_HERMES_WEBHOOK_URL"] = receiver.url
        with running(
            db_url, tmp_path / "cluster", twice=tuple(DAEMONS), once=(), extra_env=hermes
        ) as cluster:
            assert len(cluster.daemons) == 2 * len(DAEMONS) and cluster.api_workers == 2
            started = time.monotonic()
            with ThreadPoolExecutor(4) as pool:
                list(
                    pool.map(
                        lambda item: upload_dataset(site, cluster.api_url, scratch, *item), datasets.items()
                    )
                )
            figures["upload_s"] = time.monotonic() - started

            client = client_for(site, cluster.api_url, "root", scratch)
            rules = {ds: client.add_rule([(SCOPE, ds)], 2, "|".join(DESTINATIONS))[0] for ds in datasets}
            replicated = time.monotonic()
            left = quiesce(db_url, seconds=600)
            assert left == {}, f"still pending: {left}: {examples(db_url)}"
            assert count(db_url, Rule, Rule.state != RuleState.OK) == 0
            assert (
                set(copies_on_destinations(db_url).values()) == {2}
                and len(copies_on_destinations(db_url)) == FILES
            )
            figures["replicate_s"] = time.monotonic() - replicated

            deleted = sorted(datasets)[::2]
            removing = time.monotonic()
            for dataset in deleted:
                client.delete_rule(rules[dataset])
                client.update_rule(rules[dataset], lifetime=0)
            wait_until(
                "the judge-cleaner removing the deleted rules",
                lambda: count(db_url, Rule) == len(datasets) - len(deleted),
                300,
            )
            left = quiesce(db_url, seconds=300)
            assert left == {}, f"still pending: {left}: {examples(db_url)}"
            wait_until("hermes emptying the outbox", lambda: count(db_url, Message) == 0, 120)
            figures["delete_s"] = time.monotonic() - removing
            submissions = cluster.fts_submissions()
            dead = cluster.dead_daemons()

    assert dead == []
    assert check(db_url, storage=True) == []
    gone = {name for dataset in deleted for name in datasets[dataset]}
    kept = set(names) - gone
    copies = copies_on_destinations(db_url)
    assert set(copies) == kept and set(copies.values()) == {2}
    for destination in DESTINATIONS:
        assert not [n for n in gone if (site.rse_dir(destination) / hash_path(SCOPE, n)).exists()], (
            destination
        )
    assert sum(
        1 for n in kept for d in DESTINATIONS if (site.rse_dir(d) / hash_path(SCOPE, n)).exists()
    ) == 2 * len(kept)
    if tool == "fts3":
        assert not submitted_twice(submissions)
        assert len(submissions) == 2 * FILES
    accepted = receiver.accepted()
    assert accepted and set(accepted.values()) == {1}
    print(
        f"scale-out {tool}: files={FILES} datasets={len(datasets)} daemons={2 * len(DAEMONS)} processes "
        + " ".join(f"{k}={v:.1f}" for k, v in figures.items())
        + f" messages={len(accepted)}"
    )

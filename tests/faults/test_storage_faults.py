"""30% of put, stat and delete fail: uploads retry until they arrive whole, the reaper retries
deletions, and no catalogue row goes whose file is still on storage.

The cluster's reaper process is replaced for the test by a Reaper in this process whose
``protocol_factory`` wraps storage in :class:`~tests.faults.storage.FaultyProtocol`; the workload's
uploads go through the same wrapper.  A row dropped after a refused delete would leave its file
behind with no row to retry it, which the checker's storage walk reports as a file without replica.
"""

from __future__ import annotations

import threading
import time

import pytest

from datamgmt.config import reset_config
from datamgmt.daemons.reaper import Reaper
from tests.faults.checks import finish
from tests.faults.cluster import SETTINGS
from tests.faults.storage import Injector
from tests.faults.workload import WEIGHTS, Workload

pytestmark = pytest.mark.long

RUN_SECONDS = 20


def test_failing_storage_converges_and_loses_nothing(cluster, site, workdir, monkeypatch):
    for key, value in SETTINGS.items():
        monkeypatch.setenv(key, value)
    reset_config()
    injector = Injector(rate=0.3, seed=30)
    cluster.daemons["reaper"].stop()
    reaper = Reaper(worker_id="faulty-reaper", db_url=cluster.db_url)
    reaper.retry_base_seconds = 0
    reaper.protocol_factory = injector.factory()
    stop = threading.Event()

    def reap() -> None:
        while not stop.is_set():
            reaper.run_once(50)
            time.sleep(0.2)

    thread = threading.Thread(target=reap, name="faulty-reaper", daemon=True)
    thread.start()
    weights = {**WEIGHTS, "delete_rule": 4}
    workload = Workload(
        site, cluster.api_url, workdir, seed=3, weights=weights, protocol_factory=injector.factory()
    ).start()
    try:
        time.sleep(RUN_SECONDS)
        outcome = finish(cluster, workload)
    finally:
        stop.set()
        thread.join(timeout=60)
        reset_config()
    outcome.report("storage faults", rate=0.3, injected=dict(injector.injected))
    assert {"put", "stat", "delete"} <= set(injector.injected), "every operation must have been failed"
    outcome.assert_clean()

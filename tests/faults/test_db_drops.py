"""The database drops every connection, again and again, while the API serves and the daemons work.

``pg_terminate_backend`` hits every session of the catalogue's database about once a second.  An
API call must either succeed or get a clean, retriable ``503`` with ``Retry-After`` (never a 500),
and the daemons must roll back, reconnect and go on: none of them may exit, and once the drops
stop the service drains and the checker finds nothing.  A list streamed past its first batch
can only be cut short by a drop (the 200 is on its way); the probe counts those as ``CUT``, and
the stock client reports them as a retriable ``ServiceUnavailable``.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.faults.checks import finish
from tests.faults.site import ROOT_PASSWORD, SCOPE
from tests.faults.workload import Workload

pytestmark = pytest.mark.long

DROP_SECONDS = 20
TERMINATE = text(
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def drop_connections(db_url: str, stop: threading.Event, rng: random.Random, killed: list[int]) -> None:
    engine = create_engine(db_url, isolation_level="AUTOCOMMIT", poolclass=None)
    try:
        while not stop.wait(rng.uniform(0.3, 1.5)):
            with engine.connect() as conn:
                killed.append(conn.execute(TERMINATE).scalar() or 0)
    finally:
        engine.dispose()


#: The probe's record of a streamed answer that ended before its last chunk.
CUT = (0, False)


def probe(api_url: str, stop: threading.Event, answers: Counter[tuple[int, bool]]) -> None:
    """Raw HTTP, so the status and headers are seen as the server sent them."""
    http = requests.Session()
    while "X-Rucio-Auth-Token" not in http.headers:  # the login may meet a drop too: a 503 to repeat
        login = http.get(
            f"{api_url}/auth/userpass",
            headers={
                "X-Rucio-Account": "root",
                "X-Rucio-Username": "root",
                "X-Rucio-Password": ROOT_PASSWORD,
            },
        )
        answers[(login.status_code, "Retry-After" in login.headers)] += 1
        if login.ok:
            http.headers["X-Rucio-Auth-Token"] = login.headers["X-Rucio-Auth-Token"]
    while not stop.is_set():
        for method, path in (
            ("GET", f"/dids/{SCOPE}/dids/search"),
            ("GET", "/rses/"),
            ("GET", "/accounts/root"),
        ):
            try:
                response = http.request(method, api_url + path, timeout=60)
            except requests.exceptions.ChunkedEncodingError:
                answers[CUT] += 1
                continue
            response.close()
            answers[(response.status_code, "Retry-After" in response.headers)] += 1


def test_connection_drops_answer_503_and_daemons_carry_on(cluster, site, workdir):
    stop = threading.Event()
    answers: Counter[tuple[int, bool]] = Counter()
    terminated: list[int] = []
    workload = Workload(site, cluster.api_url, workdir, seed=5).start()
    threads = [
        threading.Thread(target=drop_connections, args=(cluster.db_url, stop, random.Random(5), terminated)),
        threading.Thread(target=probe, args=(cluster.api_url, stop, answers)),
    ]
    for thread in threads:
        thread.start()
    time.sleep(DROP_SECONDS)
    probing = threads[1].is_alive()
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    outcome = finish(cluster, workload)
    outcome.report(
        "database drops",
        drops=len(terminated),
        sessions_terminated=sum(terminated),
        probe_answers=dict(answers),
    )
    unclean = {answer: n for answer, n in answers.items() if answer[0] >= 500 and answer != (503, True)}
    assert not unclean, f"answers other than 503 + Retry-After: {unclean}"
    assert probing, f"the probe died before the drops ended: {dict(answers)}"
    assert not outcome.workload.server_errors.keys() - {503}, dict(outcome.workload.server_errors)
    assert sum(terminated) > 0
    outcome.assert_clean()

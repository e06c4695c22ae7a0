"""kill -9 trials: a random daemon instance or API worker dies at a random moment under load.

Each trial waits a random moment, SIGKILLs one process and starts it again (gunicorn forks its own
workers again).  After the trials the workload stops, the daemons drain, and the checker must find
nothing, the FTS3 double must have taken every transfer once, and every call of the workload must
have gone through in the end.
"""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from tests.faults.checks import finish
from tests.faults.conftest import trials
from tests.faults.workload import Workload

pytestmark = pytest.mark.long


def test_kill9_trials(cluster, site, workdir):
    rng = random.Random(15)
    workload = Workload(site, cluster.api_url, workdir, threads=2, seed=1).start()
    killed: Counter[str] = Counter()
    count = trials()
    for _ in range(count):
        time.sleep(rng.uniform(0.5, 3.0))
        killed[cluster.kill_random(rng)] += 1
    cluster.wait_api_workers()
    outcome = finish(cluster, workload)
    outcome.report("kill -9", trials=count, faults_injected=sum(killed.values()), killed=dict(killed))
    outcome.assert_clean()

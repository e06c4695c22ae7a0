"""conveyor-stager: submits STAGEIN requests (recalls from tape), apart from the submitter.

Rucio runs its stager as the submitter restricted to STAGEIN requests; so does this one, with
the same claims, leases, routing and look-ups of unanswered submissions.  The submitter leaves
STAGEIN requests to it when ``[conveyor] separate_stager`` is set; otherwise both may take them,
and their leases keep any one request to one of them.
"""

from __future__ import annotations

from datamgmt.core.db.constants import RequestType
from datamgmt.daemons.conveyor.submitter import Submitter


class Stager(Submitter):
    name = "conveyor-stager"
    request_types = (RequestType.STAGEIN,)


DAEMON = Stager

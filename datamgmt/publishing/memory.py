"""An in-memory :class:`~datamgmt.publishing.repository.Repository` for tests, benchmarks and demos."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from datetime import datetime

from datamgmt.publishing.records import ShareRecord
from datamgmt.publishing.repository import RecordKey, RepositoryInfo, SetInfo


def in_set(record: ShareRecord, set_spec: str) -> bool:
    """True when the record is in the set or in one of its descendants."""
    prefix = set_spec + ":"
    return any(spec == set_spec or spec.startswith(prefix) for spec in record.sets)


def ancestor_sets(specs: Iterable[str]) -> set[str]:
    """Every setSpec named plus all of its ancestors (``a:b:c`` gives ``a``, ``a:b``, ``a:b:c``)."""
    found: set[str] = set()
    for spec in specs:
        tags = spec.split(":")
        found.update(":".join(tags[: depth + 1]) for depth in range(len(tags)))
    return found


class MemoryRepository:
    """Records kept sorted by (datestamp, share_id); lookups by bisection.

    Set names are the setSpecs unless ``set_names`` says otherwise.  Parent sets of the
    records' setSpecs (``scope``, ``pidservice``) are listed too, so the hierarchy is explicit.
    """

    def __init__(
        self,
        info: RepositoryInfo,
        records: Iterable[ShareRecord] = (),
        set_names: dict[str, str] | None = None,
    ) -> None:
        self._info = info
        self._set_names = dict(set_names or {})
        self._records: list[ShareRecord] = []
        self._keys: list[RecordKey] = []
        self._by_did: dict[tuple[str, str], ShareRecord] = {}
        for record in records:
            self.put(record)

    def put(self, record: ShareRecord) -> None:
        """Add a record, replacing the earlier one of the same DID (a re-publication or deletion)."""
        previous = self._by_did.get((record.scope, record.name))
        if previous is not None:
            index = bisect.bisect_left(self._keys, previous.sort_key)
            del self._records[index], self._keys[index]
        index = bisect.bisect_left(self._keys, record.sort_key)
        self._records.insert(index, record)
        self._keys.insert(index, record.sort_key)
        self._by_did[(record.scope, record.name)] = record

    def identify_info(self) -> RepositoryInfo:
        return self._info

    def list_sets(self) -> list[SetInfo]:
        specs = ancestor_sets(spec for record in self._records for spec in record.sets)
        return [SetInfo(spec, self._set_names.get(spec, spec)) for spec in sorted(specs)]

    def get_record(self, scope: str, name: str) -> ShareRecord | None:
        return self._by_did.get((scope, name))

    def _matching(
        self,
        from_: datetime | None,
        until: datetime | None,
        set_spec: str | None,
        after_key: RecordKey | None,
    ) -> Iterator[ShareRecord]:
        start = 0
        if from_ is not None:
            start = bisect.bisect_left(self._keys, (from_, ""))
        if after_key is not None:
            start = max(start, bisect.bisect_right(self._keys, after_key))
        records = self._records
        for index in range(start, len(records)):
            record = records[index]
            if until is not None and record.datestamp > until:
                return
            if set_spec is None or in_set(record, set_spec):
                yield record

    def list_records(
        self,
        from_: datetime | None,
        until: datetime | None,
        set_spec: str | None,
        after_key: RecordKey | None,
        limit: int,
    ) -> list[ShareRecord]:
        found: list[ShareRecord] = []
        for record in self._matching(from_, until, set_spec, after_key):
            found.append(record)
            if len(found) == limit:
                break
        return found

    def count_records(self, from_: datetime | None, until: datetime | None, set_spec: str | None) -> int:
        return sum(1 for _ in self._matching(from_, until, set_spec, None))

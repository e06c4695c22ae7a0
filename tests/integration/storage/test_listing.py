"""``Protocol.list_files`` on every backend that stores data: the files written are listed with
their sizes, under the PFNs ``lfns2pfns`` gives, and a deleted one is no longer listed."""

from __future__ import annotations

from pathlib import Path

from tests.integration.storage.conftest import Backend


def test_listing_shows_what_is_stored(data_backend: Backend, tmp_path: Path) -> None:
    protocol = data_backend.protocol
    written = {data_backend.create(b"a" * 7, tmp_path): 7, data_backend.create(b"b" * 12, tmp_path): 12}
    pfn = protocol.lfns2pfns([{"scope": "user.jdoe", "name": "listed.dat"}])["user.jdoe:listed.dat"]
    local = tmp_path / "listed"
    local.write_bytes(b"c" * 3)
    protocol.put(str(local), pfn)
    written[pfn] = 3
    listed = dict(protocol.list_files())
    assert {p: listed.get(p) for p in written} == written
    protocol.delete(pfn)
    assert pfn not in dict(protocol.list_files())

"""Protocol records, selection, the factory and PFN checks (no server needed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from datamgmt.exceptions import InvalidObject, InvalidPath, InvalidValueForKey, RSEProtocolNotSupported
from datamgmt.rse.protocols import (
    ProtocolRecord,
    create_protocol,
    implementation_name,
    protocols_ordered,
    rucio_impl,
    select_protocol,
)
from datamgmt.rse.protocols.gfal import GfalProtocol
from datamgmt.rse.protocols.posix import PosixProtocol
from datamgmt.rse.protocols.s3 import S3Protocol


def record(scheme: str, read: int | None = 1, write: int | None = 1, **extra: Any) -> dict[str, Any]:
    return {
        "scheme": scheme,
        "hostname": "storage.example.org",
        "port": 1094,
        "prefix": "/data/rse1",
        "impl": extra.pop("impl", ""),
        "domains": {
            "lan": {"read": read, "write": write, "delete": 1},
            "wan": {"read": read, "write": write, "delete": 1, "third_party_copy_read": 1},
        },
        **extra,
    }


def test_select_lowest_positive_priority() -> None:
    protocols = [record("root", read=2), record("davs", read=1), record("https", read=0)]
    assert select_protocol(protocols, "read", "wan").scheme == "davs"
    assert [p.scheme for p in protocols_ordered(protocols, "read", "lan")] == ["davs", "root"]


def test_select_ties_keep_input_order_and_filter_schemes() -> None:
    protocols = [record("root", write=1), record("davs", write=1)]
    assert select_protocol(protocols, "write").scheme == "root"
    assert select_protocol(protocols, "write", schemes={"davs"}).scheme == "davs"


@pytest.mark.parametrize("priority", [0, None])
def test_select_raises_when_nothing_offers_the_operation(priority: int | None) -> None:
    with pytest.raises(RSEProtocolNotSupported):
        select_protocol([record("root", write=priority)], "write", "wan")
    with pytest.raises(RSEProtocolNotSupported):
        select_protocol([], "read")


def test_legacy_third_party_copy_key() -> None:
    legacy = record("root")
    legacy["domains"]["wan"] = {"read": 1, "third_party_copy": 3}
    assert ProtocolRecord.from_mapping(legacy).priority("third_party_copy_write", "wan") == 3


def test_unknown_operation_or_domain() -> None:
    with pytest.raises(InvalidValueForKey):
        select_protocol([record("root")], "third_party_copy_read", "lan")
    with pytest.raises(InvalidValueForKey):
        select_protocol([record("root")], "read", "moon")


def test_record_from_dataclass_and_normalisation() -> None:
    @dataclass
    class Row:
        scheme: str
        hostname: str
        port: str
        prefix: str
        rse_id: str = "ignored"
        domains: dict[str, Any] = field(default_factory=dict)

    parsed = ProtocolRecord.from_mapping(Row("ROOT", "h", "1094", "data//x"))
    assert (parsed.scheme, parsed.port, parsed.prefix) == ("root", 1094, "/data/x/")
    with pytest.raises(InvalidObject):
        ProtocolRecord.from_mapping({"hostname": "h"})


@pytest.mark.parametrize(
    ("scheme", "impl", "expected"),
    [
        ("file", "rucio.rse.protocols.posix.Default", PosixProtocol),
        ("root", "rucio.rse.protocols.gfal.Default", GfalProtocol),
        ("davs", "rucio.rse.protocols.webdav.Default", GfalProtocol),
        ("mock", "", GfalProtocol),
        ("file", "", PosixProtocol),
        ("s3", "", S3Protocol),
        ("https", "s3", S3Protocol),
        ("https", "datamgmt.rse.protocols.s3.S3Protocol", S3Protocol),
        ("file", "gfal2", GfalProtocol),
    ],
)
def test_factory_picks_by_impl_then_scheme(scheme: str, impl: str, expected: type) -> None:
    assert type(create_protocol(record(scheme, impl=impl))) is expected


def test_factory_refuses_scheme_the_implementation_lacks() -> None:
    assert implementation_name(record("root", impl="posix")) == "posix"
    with pytest.raises(RSEProtocolNotSupported):
        create_protocol(record("root", impl="posix"))


def test_lfns2pfns_per_scheme() -> None:
    lfns = [{"scope": "foo", "name": "bar"}, {"scope": "foo", "name": "nd", "path": "/custom/place/nd"}]
    assert create_protocol(record("root")).lfns2pfns(lfns) == {
        "foo:bar": "root://storage.example.org:1094//data/rse1/foo/4e/99/bar",
        "foo:nd": "root://storage.example.org:1094//data/rse1/custom/place/nd",
    }
    assert create_protocol(record("file")).lfns2pfns(lfns[:1]) == {
        "foo:bar": "file:///data/rse1/foo/4e/99/bar"
    }
    identity = create_protocol(record("davs"), lfn2pfn_algorithm="identity")
    assert identity.lfns2pfns(lfns[:1]) == {"foo:bar": "davs://storage.example.org:1094/data/rse1/foo/bar"}
    s3 = create_protocol(record("s3", prefix="/bucket/rse1"))
    assert s3.lfns2pfns(lfns[:1]) == {"foo:bar": "s3://storage.example.org:1094/bucket/rse1/foo/4e/99/bar"}


@pytest.mark.parametrize("path", ["../../etc/passwd", "//etc/passwd", "x/%2e%2e/%2e%2e/%2e%2e/etc"])
def test_lfns2pfns_refuses_escaping_replica_paths(path: str) -> None:
    with pytest.raises(InvalidPath):
        create_protocol(record("root")).lfns2pfns([{"scope": "foo", "name": "bar", "path": path}])


@pytest.mark.parametrize(
    "pfn",
    [
        "/data/rse1/../../etc/passwd",
        "/etc/passwd",
        "file:///data/other/x",
        "file://elsewhere.org/data/rse1/x",
        "root://storage.example.org:1094//data/rse1/x",
        "relative/data/rse1/x",
    ],
)
def test_posix_refuses_pfns_outside_its_prefix(pfn: str) -> None:
    with pytest.raises(InvalidPath):
        create_protocol(record("file")).delete(pfn)


@pytest.mark.parametrize(
    "pfn",
    [
        "root://other.org:1094//data/rse1/x",
        "root://storage.example.org:2000//data/rse1/x",
        "davs://storage.example.org:1094//data/rse1/x",
        "root://storage.example.org:1094//data/rse1/%2e%2e/x",
    ],
)
def test_gfal_refuses_foreign_pfns_before_any_io(pfn: str) -> None:
    with pytest.raises(InvalidPath):
        create_protocol(record("root")).delete(pfn)


def test_s3_pfn_must_name_an_object() -> None:
    s3 = create_protocol(record("s3", prefix="/"))
    assert s3.bucket_and_key("s3://storage.example.org:1094/bucket/a/b") == ("bucket", "a/b")
    with pytest.raises(InvalidPath):
        s3.bucket_and_key("s3://storage.example.org:1094/bucket")


class _Sent(Exception):
    """Raised by the request hook to stop boto3 before the network."""


@pytest.mark.parametrize(
    ("style", "url"),
    [
        ("path", "https://s3.example.org/bucket/rse1/key"),
        ("virtual", "https://bucket.s3.example.org/rse1/key"),
        ("host", "https://bucket.s3.example.org/rse1/key"),
    ],
)
def test_s3_addressing_style(style: str, url: str) -> None:
    rec = {"scheme": "s3s", "hostname": "s3.example.org", "prefix": "/bucket/rse1", "impl": "s3"}
    s3 = create_protocol(rec, {"access_key": "a", "secret_key": "b", "addressing_style": style})
    sent: list[str] = []

    def capture(request: Any, **_: Any) -> None:
        sent.append(request.url)
        raise _Sent

    s3.client.meta.events.register("before-send.s3.HeadObject", capture)
    with pytest.raises(_Sent):
        s3.stat("s3s://s3.example.org/bucket/rse1/key")
    assert sent == [url]


@pytest.mark.parametrize(
    ("scheme", "impl", "shown"),
    [
        ("file", "posix", "rucio.rse.protocols.posix.Default"),
        ("root", "gfal2", "rucio.rse.protocols.gfal.Default"),
        ("davs", "", "rucio.rse.protocols.gfal.Default"),
        ("s3", "s3", "rucio.rse.protocols.gfal.NoRename"),
        ("root", "rucio.rse.protocols.xrootd.Default", "rucio.rse.protocols.xrootd.Default"),
    ],
)
def test_rucio_clients_are_shown_importable_impls(scheme: str, impl: str, shown: str) -> None:
    assert rucio_impl(record(scheme, impl=impl)) == shown


def test_rucio_gfal_impl_for_s3_still_runs_on_boto3() -> None:
    assert type(create_protocol(record("s3", impl="rucio.rse.protocols.gfal.NoRename"))) is S3Protocol

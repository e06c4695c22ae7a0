"""Path algorithms and the prefix-escape guard."""

from __future__ import annotations

import pytest

from datamgmt.exceptions import ConfigurationError, InvalidPath
from datamgmt.rse import lfn2pfn
from datamgmt.rse.lfn2pfn import join_path, lfn2path, normalize_prefix, path_below_prefix


@pytest.mark.parametrize(
    ("scope", "name", "algorithm", "expected"),
    [
        ("foo", "bar", "hash", "foo/4e/99/bar"),
        ("user.foo", "bar", "hash", "user/foo/13/7f/bar"),
        ("mock", "file1", "hash", "mock/3c/26/file1"),
        ("foo", "bar", "identity", "foo/bar"),
        ("group.phys.higgs", "x.root", "identity", "group/phys/higgs/x.root"),
        ("users.are.not.user", "f", "identity", "users.are.not.user/f"),
    ],
)
def test_algorithm_vectors(scope: str, name: str, algorithm: str, expected: str) -> None:
    assert lfn2path(scope, name, algorithm) == expected


def test_deployment_registers_its_own_algorithm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(lfn2pfn._ALGORITHMS, "flat", lambda scope, name: name)
    assert lfn2path("any", "file.dat", "flat") == "file.dat"


def test_unknown_algorithm_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="no-such-algorithm"):
        lfn2path("foo", "bar", "no-such-algorithm")


@pytest.mark.parametrize(
    ("prefix", "expected"), [("", "/"), ("/", "/"), ("data", "/data/"), ("//data//rse1/", "/data/rse1/")]
)
def test_normalize_prefix(prefix: str, expected: str) -> None:
    assert normalize_prefix(prefix) == expected


def test_join_path_inside_prefix() -> None:
    assert join_path("/data", "foo/4e/99/bar") == "/data/foo/4e/99/bar"


@pytest.mark.parametrize(
    "path",
    [
        "../etc/passwd",
        "foo/../../etc/passwd",
        "foo/..",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        "%2e%2e/secret",
        "foo/%2E%2E/%2e%2e/secret",
        "%252e%252e/secret",
        "..%2fsecret",
        "foo\\..\\..\\secret",
        "foo/\x00bar",
        "",
        ".",
        "./",
    ],
)
def test_join_path_refuses_escapes(path: str) -> None:
    with pytest.raises(InvalidPath):
        join_path("/data/rse1/", path)


def test_path_below_prefix_returns_relative_part() -> None:
    assert path_below_prefix("/data/rse1/", "//data/rse1/foo/bar") == "foo/bar"


@pytest.mark.parametrize(
    "path",
    ["/data/rse1", "/data/rse10/foo", "/data/other/foo", "/data/rse1/../other/foo", "/data/rse1/%2e%2e/x"],
)
def test_path_below_prefix_refuses_outside(path: str) -> None:
    with pytest.raises(InvalidPath):
        path_below_prefix("/data/rse1/", path)

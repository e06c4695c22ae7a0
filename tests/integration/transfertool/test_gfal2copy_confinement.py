"""A copy between ``file://`` ends stays inside the RSE prefixes it was given (real gfal2, real links).

The planted links and names are what a user who controls a directory under a prefix (or a
path) could leave there; the ``outside`` directory stands for another user's data or /etc.
"""

from __future__ import annotations

import errno
import os
import zlib
from pathlib import Path

import pytest

from datamgmt.transfertool.gfal2copy import CopyFailure, CopyJob, new_context, verified_copy

pytestmark = pytest.mark.integration


@pytest.fixture
def site(tmp_path: Path) -> dict[str, Path]:
    paths = {name: tmp_path / name for name in ("src", "dst", "outside")}
    for path in paths.values():
        path.mkdir()
    (paths["src"] / "file").write_bytes(b"payload")
    (paths["outside"] / "secret").write_bytes(b"someone else's")
    return paths


def copy(site: dict[str, Path], source: str, destination: str) -> int:
    job = CopyJob(
        source=source,
        destination=destination,
        checksums={"ADLER32": f"{zlib.adler32(b'payload'):08x}"},
        source_root=str(site["src"]),
        destination_root=str(site["dst"]),
    )
    return verified_copy(new_context(), job)


def outside(site: dict[str, Path]) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in site["outside"].iterdir()}


def test_copy_inside_the_prefixes_works(site):
    assert copy(site, f"file://{site['src']}/file", f"file://{site['dst']}/a/b/file") == len(b"payload")
    assert (site["dst"] / "a" / "b" / "file").read_bytes() == b"payload"


@pytest.mark.parametrize("planted", ["directory link", "file link", "dot-dot"])
def test_destination_never_written_outside_its_prefix(site, planted):
    if planted == "directory link":  # a directory under the prefix that is a link out of it
        os.symlink(site["outside"], site["dst"] / "ab")
        destination = f"file://{site['dst']}/ab/secret"
    elif planted == "file link":  # the destination file itself is a link to a victim
        os.symlink(site["outside"] / "secret", site["dst"] / "file")
        destination = f"file://{site['dst']}/file"
    else:
        destination = f"file://{site['dst']}/../outside/secret"
    with pytest.raises(CopyFailure) as failure:
        copy(site, f"file://{site['src']}/file", destination)
    assert (failure.value.scope, failure.value.code) == ("DESTINATION", errno.EACCES)
    assert outside(site) == {"secret": b"someone else's"}


@pytest.mark.parametrize("planted", ["link", "dot-dot"])
def test_source_never_read_outside_its_prefix(site, planted):
    if planted == "link":
        os.symlink(site["outside"] / "secret", site["src"] / "innocent")
        source = f"file://{site['src']}/innocent"
    else:
        source = f"file://{site['src']}/../outside/secret"
    with pytest.raises(CopyFailure) as failure:
        copy(site, source, f"file://{site['dst']}/stolen")
    assert (failure.value.scope, failure.value.code) == ("SOURCE", errno.EACCES)
    assert not (site["dst"] / "stolen").exists()


def test_percent_encoding_is_no_way_out(site):
    """gfal2 opens the raw path and the check judges that same raw path: an encoded separator is
    part of a name inside the prefix, and an encoded ``..`` is refused outright."""
    copy(site, f"file://{site['src']}/file", f"file://{site['dst']}/outside%2Fsecret")
    assert (site["dst"] / "outside%2Fsecret").read_bytes() == b"payload"
    with pytest.raises(CopyFailure) as failure:
        copy(site, f"file://{site['src']}/file", f"file://{site['dst']}/%2e%2e/outside/secret")
    assert (failure.value.scope, failure.value.code) == ("DESTINATION", errno.EACCES)
    assert outside(site) == {"secret": b"someone else's"}

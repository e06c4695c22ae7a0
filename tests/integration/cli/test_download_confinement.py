"""``datamgmt download`` against a hostile server: nothing lands outside ``--dir`` (issue 15, defect 4).

The server here is not datamgmt: it is a small HTTP server on 127.0.0.1 that logs the client in,
answers the replica listing with whatever scopes and names a test gives it, describes one RSE
whose read protocol is plain HTTP on the same server, and serves the files' bytes (read through
gfal2's HTTP plugin, as for any WebDAV storage). Every file the listing names is served with the
right size and adler32, so only the client's own checks can stop a write.

The work area holds ``dir`` (the download directory) and ``outside`` (someone else's files); each
test snapshots the whole area and proves that nothing outside ``dir`` changed.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

RSE = "HOSTILE"
TOKEN = "hostile-token"


@dataclass
class HostileServer:
    """What the server lists (``(scope, name)`` pairs) and the bytes it serves for each."""

    url: str = ""
    files: list[tuple[str, str]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    @staticmethod
    def content(index: int) -> bytes:
        return f"hostile payload {index}\n".encode()

    def listing(self) -> Iterator[dict[str, Any]]:
        for index, (scope, name) in enumerate(self.files):
            data = self.content(index)
            pfn = f"{self.url}/files/{index}"
            yield {
                "scope": scope,
                "name": name,
                "bytes": len(data),
                "md5": None,
                "adler32": f"{zlib.adler32(data) & 0xFFFFFFFF:08x}",
                "pfns": {pfn: {"rse": RSE, "type": "DISK", "domain": "wan", "priority": 1}},
                "rses": {RSE: [pfn]},
                "states": {RSE: "AVAILABLE"},
            }

    def rse(self) -> dict[str, Any]:
        port = int(self.url.rsplit(":", 1)[1])
        return {
            "rse": RSE,
            "deterministic": True,
            "lfn2pfn_algorithm": "hash",
            "protocols": [
                {
                    "scheme": "http",
                    "hostname": "127.0.0.1",
                    "port": port,
                    "prefix": "/files/",
                    "impl": "gfal",
                    "domains": {"wan": {"read": 1}, "lan": {"read": 1}},
                }
            ],
        }


def _handler(state: HostileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(
            self,
            body: bytes,
            content_type: str = "application/json",
            status: int = 200,
            headers: dict[str, str] | None = None,
        ) -> None:
            self.send_response(status)
            for key, value in {"Content-Type": content_type, **(headers or {})}.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            state.requests.append(f"{self.command} {self.path}")
            if self.path.startswith("/auth/userpass"):
                self._send(b"", headers={"X-Rucio-Auth-Token": TOKEN})
            elif self.path.rstrip("/") == f"/rses/{RSE}":
                self._send(json.dumps(state.rse()).encode())
            elif self.path.startswith("/files/"):
                self._send(state.content(int(self.path.rsplit("/", 1)[1])), "application/octet-stream")
            else:
                self._send(
                    json.dumps({"ExceptionClass": "NotFound", "ExceptionMessage": self.path}).encode(),
                    status=404,
                )

        do_HEAD = do_GET

        def do_POST(self) -> None:
            state.requests.append(f"{self.command} {self.path}")
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            lines = "".join(json.dumps(line) + "\n" for line in state.listing())
            self._send(lines.encode(), "application/x-json-stream")

    return Handler


@pytest.fixture
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileServer]:
    state = HostileServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings = {
        "URL": state.url,
        "ACCOUNT": "victim",
        "USERNAME": "victim",
        "PASSWORD": "secret",
        "TOKEN_FILE": str(tmp_path / "token"),
    }
    monkeypatch.setenv("DATAMGMT_CLIENT_CONFIG", str(tmp_path / "absent.cfg"))
    for option, value in settings.items():
        monkeypatch.setenv(f"DATAMGMT_CLIENT_{option}", value)
    try:
        yield state
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture
def area(tmp_path: Path) -> Path:
    """``tmp/area/dir`` to download into, and ``tmp/area/outside/victim`` that must never change."""
    (tmp_path / "area" / "dir").mkdir(parents=True)
    (tmp_path / "area" / "outside").mkdir()
    (tmp_path / "area" / "outside" / "victim").write_bytes(b"not yours\n")
    return tmp_path / "area"


def snapshot(root: Path, skip: Path | None = None) -> dict[str, bytes | str]:
    """Every entry below ``root`` (except ``skip``): file bytes, link targets, ``dir`` for directories."""
    entries: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        if skip is not None and (path == skip or skip in path.parents):
            continue
        key = str(path.relative_to(root))
        if path.is_symlink():
            entries[key] = f"link -> {path.readlink()}"
        elif path.is_dir():
            entries[key] = "dir"
        else:
            entries[key] = path.read_bytes()
    return entries


def files_below(directory: Path) -> list[str]:
    return sorted(
        str(path.relative_to(directory))
        for path in directory.rglob("*")
        if path.is_file() and not path.is_symlink()
    )


def download(directory: Path, *dids: str) -> Result:
    from datamgmt.cli.user import cli

    return CliRunner().invoke(cli, ["download", "--dir", str(directory), *(dids or ("user.victim:ds",))])


def assert_refused(result: Result, area: Path, before: dict[str, bytes | str]) -> None:
    """A one-line InvalidPath error, exit 1, nothing changed outside ``dir`` and no file in it."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: InvalidPath: "), result.stderr
    assert snapshot(area, skip=area / "dir") == before
    assert files_below(area / "dir") == []


@pytest.mark.parametrize(
    ("scope", "name"),
    [
        ("user.evil", "../../outside/victim"),
        ("user.evil", "../../outside/new"),
        ("user.evil", "sub/../../../outside/new"),
        ("..", "outside/new"),
        ("user.evil/../..", "outside/new"),
        (".", "../outside/new"),
        ("user.evil", "a\x00b"),
        ("user.evil", "line\nbreak"),
        ("user.evil", "back\\..\\..\\slash"),
        ("user.evil", "./"),
        ("user.evil", "/"),
        ("", "orphan"),
    ],
)
def test_unsafe_names_are_refused_before_anything_is_written(
    hostile: HostileServer, area: Path, scope: str, name: str
) -> None:
    hostile.files = [("user.evil", "innocent"), (scope, name)]
    before = snapshot(area, skip=area / "dir")
    assert_refused(download(area / "dir"), area, before)


def test_absolute_names_land_inside_the_directory(hostile: HostileServer, area: Path) -> None:
    """A leading slash is part of a (CMS-style) name: ``/abs/path`` lands at ``DIR/scope/abs/path``.

    The names point into the work area, so a client that took them as absolute paths would write
    there (and this test would see it) rather than in the real ``/store``.
    """
    names = [f"{area}/store/mc/file.root", f"{area}/outside/absolute"]
    hostile.files = [("user.cms", name) for name in names]
    before = snapshot(area, skip=area / "dir")
    result = download(area / "dir")
    assert result.exit_code == 0, result.output
    assert snapshot(area, skip=area / "dir") == before
    for index, name in enumerate(names):
        assert (area / "dir" / "user.cms" / name.lstrip("/")).read_bytes() == HostileServer.content(index)


def test_two_names_on_one_path_are_refused(hostile: HostileServer, area: Path) -> None:
    hostile.files = [("user.cms", "/store/x.root"), ("user.cms", "store//x.root")]
    before = snapshot(area, skip=area / "dir")
    assert_refused(download(area / "dir"), area, before)


@pytest.mark.parametrize(
    ("link", "target", "scope", "name"),
    [
        ("user.evil", "outside", "user.evil", "victim"),  # the scope directory
        ("user.evil", "outside", "user.evil", "deeper/new"),  # ... and directories made below it
        ("user.evil/sub", "outside", "user.evil", "sub/victim"),  # a directory of the name
        ("user.evil/file", "outside/victim", "user.evil", "file"),  # the file itself
    ],
)
def test_links_planted_in_the_directory_are_not_followed_out(
    hostile: HostileServer, area: Path, link: str, target: str, scope: str, name: str
) -> None:
    planted = area / "dir" / link
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.symlink_to(area / target)
    hostile.files = [(scope, name)]
    before = snapshot(area, skip=area / "dir")
    assert_refused(download(area / "dir"), area, before)


def test_links_that_stay_inside_the_directory_are_followed(hostile: HostileServer, area: Path) -> None:
    (area / "dir" / "elsewhere").mkdir()
    (area / "dir" / "user.ok").symlink_to(area / "dir" / "elsewhere")
    hostile.files = [("user.ok", "file")]
    result = download(area / "dir")
    assert result.exit_code == 0, result.output
    assert (area / "dir" / "elsewhere" / "file").read_bytes() == HostileServer.content(0)
    assert any(line.startswith("GET /files/") for line in hostile.requests)

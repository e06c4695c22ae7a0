"""The unmodified rucio-clients 41 CLI on a multi-VO instance (``[client] vo``, docs/multi-vo.md).

Two VOs use the same scope, file and RSE names; uploads land in each VO's own storage, each
client sees its own VO only, and a download returns each VO's own bytes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from datamgmt.api.app import create_app
from datamgmt.core import vo as vos
from datamgmt.core.db.session import transaction
from datamgmt.core.invariants import check_catalogue
from tests.conftest import ROOT_PASSWORD
from tests.integration.api.conftest import BIN, RucioCLI, add_file_rse
from tests.serving import serve
from tests.vo_catalogues import multi_vo  # noqa: F401 (a fixture)

pytestmark = pytest.mark.integration


@pytest.fixture
def vo_server(multi_vo: str, session: Session, root: str) -> Iterator[str]:  # noqa: F811
    if shutil.which("rucio", path=str(BIN)) is None:
        pytest.skip("rucio-clients is not installed (pip install 'rucio-clients==41.*')")
    vos.add_vo(session, "abc", "A VO", None, "root", multi_vo)
    session.commit()
    with serve(create_app(database_url=multi_vo)) as url:
        yield url


def _cli(url: str, home: Path, vo: str) -> RucioCLI:
    home.mkdir()
    config = home / "rucio.cfg"
    config.write_text(
        "[client]\n"
        f"rucio_host = {url}\nauth_host = {url}\nauth_type = userpass\n"
        f"username = root\npassword = {ROOT_PASSWORD}\naccount = root\nvo = {vo}\n"
        f"request_retries = 2\nauth_token_file_path = {home / 'token'}\n"
    )
    env = {**os.environ, "RUCIO_CONFIG": str(config), "HOME": str(home), "RUCIO_ACCOUNT": "root"}
    return RucioCLI(env=env, cwd=home)


def test_two_vos_with_the_same_names_through_the_stock_client(
    vo_server: str, multi_vo: str, tmp_path: Path
) -> None:  # noqa: F811
    clients = {vo: _cli(vo_server, tmp_path / vo, vo) for vo in ("def", "abc")}
    for vo, rucio in clients.items():
        assert "account    : root" in rucio("whoami").stdout
        add_file_rse(rucio, "SITE", tmp_path / f"storage-{vo}")
        rucio("scope", "add", "shared", "--account", "root")
        source = tmp_path / vo / "f1"
        source.write_bytes(f"the bytes of VO {vo}\n".encode())
        rucio("upload", "--rse", "SITE", "--scope", "shared", str(source))
        rucio("did", "add", "--type", "dataset", f"shared:only-{vo}")
    for vo, rucio in clients.items():
        listed = rucio("did", "list", "shared:*", "--filter", "type=all", "--short").stdout.split()
        assert sorted(listed) == ["shared:f1", f"shared:only-{vo}"]
        target = tmp_path / f"download-{vo}"
        rucio("download", "--dir", str(target), "shared:f1")
        assert (target / "shared" / "f1").read_bytes() == f"the bytes of VO {vo}\n".encode()
    # The other VO's storage area is refused to a protocol of this one.
    refused = clients["abc"](
        "rse", "protocol", "add", "SITE", "--hostname", "localhost", "--scheme", "root",
        "--prefix", f"{tmp_path / 'storage-def'}/", "--impl", "rucio.rse.protocols.gfal.Default",
        check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "used by another VO" in refused.stderr
    for vo in ("def", "abc"):
        with transaction(vos.catalogue_url(multi_vo, vo), read_only=True) as session:
            assert check_catalogue(session).ok, vo

"""The unmodified rucio-clients 41.x CLI against our server (docs/rucio-compatibility.md).

Every scenario runs twice: with the new ``rucio <noun> <verb>`` commands and with the
legacy ones, which send the same HTTP requests.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from tests.integration.api.conftest import RucioCLI, add_file_rse, register_files

pytestmark = pytest.mark.integration


@pytest.mark.rucio_commands("rucio ping", "rucio whoami")
def test_ping_and_whoami(rucio: RucioCLI) -> None:
    assert rucio("ping").stdout.strip()
    out = rucio("whoami").stdout
    assert "account    : root" in out
    assert "SERVICE" in out and "ACTIVE" in out


@pytest.mark.rucio_commands("rucio whoami")
def test_bad_password_is_refused(rucio: RucioCLI) -> None:
    rucio.env["RUCIO_CONFIG"] = _with_password(Path(rucio.env["RUCIO_CONFIG"]), "wrong-password")
    result = rucio("whoami", check=False)
    assert result.returncode != 0
    assert "Cannot authenticate" in result.stderr + result.stdout


def _with_password(config: Path, password: str) -> str:
    changed = config.with_name("bad.cfg")
    text = "\n".join(
        f"password = {password}" if line.startswith("password") else line
        for line in config.read_text().splitlines()
    )
    changed.write_text(text.replace("auth_token_file_path = ", "auth_token_file_path = bad-"))
    return str(changed)


@pytest.mark.rucio_commands(
    "rucio --legacy list-rses",
    "rucio rse add",
    "rucio rse attribute list",
    "rucio rse attribute set",
    "rucio rse list",
    "rucio rse protocol add",
    "rucio rse show",
    "rucio-admin rse add",
    "rucio-admin rse add-protocol",
    "rucio-admin rse get-attribute",
    "rucio-admin rse info",
    "rucio-admin rse set-attribute",
)
@pytest.mark.parametrize("legacy", [False, True], ids=["new", "legacy"])
def test_rse_admin(rucio: RucioCLI, tmp_path: Path, legacy: bool) -> None:
    add_file_rse(rucio, "SITE-A", tmp_path / "a", legacy)
    if legacy:
        rucio.admin("rse", "set-attribute", "--rse", "SITE-A", "--key", "tier", "--value", "1")
        attributes = rucio.admin("rse", "get-attribute", "SITE-A").stdout
        listed = rucio("list-rses", "--rses", "tier=1").stdout
        info = rucio.admin("rse", "info", "SITE-A").stdout
    else:
        rucio("rse", "attribute", "set", "SITE-A", "--key", "tier", "--value", "1")
        attributes = rucio("rse", "attribute", "list", "SITE-A").stdout
        listed = rucio("rse", "list", "--rses", "tier=1").stdout
        info = rucio("rse", "show", "SITE-A").stdout
    assert "tier: 1" in attributes and "SITE-A: True" in attributes
    assert listed.split() == ["SITE-A"]
    assert "lfn2pfn_algorithm: hash" in info
    assert "scheme: file" in info and f"prefix: {tmp_path / 'a'}/" in info
    duplicate = rucio("rse", "add", "SITE-A", check=False)
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr


@pytest.mark.rucio_commands(
    "rucio --legacy list-account-usage",
    "rucio account limit list",
    "rucio account limit set",
    "rucio rse add",
    "rucio rse protocol add",
    "rucio-admin account get-limits",
    "rucio-admin account set-limits",
)
@pytest.mark.parametrize("legacy", [False, True], ids=["new", "legacy"])
def test_limits_and_usage(rucio: RucioCLI, tmp_path: Path, legacy: bool) -> None:
    add_file_rse(rucio, "SITE-L", tmp_path / "l")
    if legacy:
        rucio.admin("account", "set-limits", "root", "SITE-L", "10GB")
        limits = rucio.admin("account", "get-limits", "root", "SITE-L").stdout
        assert "SITE-L" in limits and "10.000 GB" in limits
        usage = rucio("list-account-usage", "root").stdout
    else:
        rucio("account", "limit", "set", "root", "--rse", "SITE-L", "--bytes", "10GB")
        usage = rucio("account", "limit", "list", "root").stdout
    assert "SITE-L" in usage and "10.000 GB" in usage


@pytest.mark.rucio_commands(
    "rucio scope add",
    "rucio scope list",
    "rucio-admin scope add",
    "rucio-admin scope list",
)
@pytest.mark.parametrize("legacy", [False, True], ids=["new", "legacy"])
def test_scopes(rucio: RucioCLI, legacy: bool) -> None:
    if legacy:
        rucio.admin("scope", "add", "--account", "root", "--scope", "sc1")
        listed = rucio.admin("scope", "list", "--account", "root").stdout
    else:
        rucio("scope", "add", "sc1", "--account", "root")
        listed = rucio("scope", "list", "--account", "root").stdout
    assert listed.split() == ["sc1"]
    assert "sc1" in rucio("scope", "list").stdout
    duplicate = rucio("scope", "add", "sc1", "--account", "root", check=False)
    assert "Details: Scope 'sc1' already exists!" in duplicate.stderr


@pytest.mark.rucio_commands(
    "rucio --legacy add-dataset",
    "rucio --legacy attach",
    "rucio --legacy close",
    "rucio --legacy get-metadata",
    "rucio --legacy list-content",
    "rucio --legacy list-dids",
    "rucio --legacy list-file-replicas",
    "rucio --legacy list-files",
    "rucio --legacy set-metadata",
    "rucio --legacy stat",
    "rucio did add",
    "rucio did content add",
    "rucio did content list",
    "rucio did list",
    "rucio did metadata list",
    "rucio did metadata set",
    "rucio did show",
    "rucio did update",
    "rucio replica list file",
    "rucio rse add",
    "rucio rse protocol add",
    "rucio scope add",
)
@pytest.mark.parametrize("legacy", [False, True], ids=["new", "legacy"])
def test_datasets_contents_metadata_close(rucio: RucioCLI, tmp_path: Path, legacy: bool) -> None:
    add_file_rse(rucio, "SITE-D", tmp_path / "d")
    rucio("scope", "add", "e2e", "--account", "root")
    register_files(rucio, "SITE-D", "e2e", ["f1", "f2"], size=1536)
    if legacy:
        rucio("add-dataset", "e2e:ds1")
        rucio("attach", "e2e:ds1", "e2e:f1", "e2e:f2")
        rucio("set-metadata", "--did", "e2e:ds1", "--key", "project", "--value", "e2eproj")
        meta = rucio("get-metadata", "e2e:ds1").stdout
        content = rucio("list-content", "e2e:ds1").stdout
        replicas = rucio("list-file-replicas", "e2e:ds1", "--pfns").stdout
        rucio("close", "e2e:ds1")
        shown = rucio("stat", "e2e:ds1").stdout
        all_dids = rucio("list-dids", "e2e:*", "--filter", "type=all").stdout
        by_meta = rucio("list-dids", "e2e:*", "--filter", "project=e2eproj", "--short").stdout
    else:
        rucio("did", "add", "--type", "dataset", "e2e:ds1")
        rucio("did", "content", "add", "--to-did", "e2e:ds1", "e2e:f1", "e2e:f2")
        rucio("did", "metadata", "set", "e2e:ds1", "--key", "project", "--value", "e2eproj")
        meta = rucio("did", "metadata", "list", "e2e:ds1").stdout
        content = rucio("did", "content", "list", "e2e:ds1").stdout
        replicas = rucio("replica", "list", "file", "e2e:ds1", "--pfns").stdout
        rucio("did", "update", "--close", "e2e:ds1")
        shown = rucio("did", "show", "e2e:ds1").stdout
        all_dids = rucio("did", "list", "e2e:*", "--filter", "type=all").stdout
        by_meta = rucio("did", "list", "e2e:*", "--filter", "project=e2eproj", "--short").stdout
    assert "project:" in meta and "e2eproj" in meta
    assert "e2e:f1" in content and "e2e:f2" in content and "FILE" in content
    assert replicas.split() == sorted(replicas.split())
    for name in ("f1", "f2"):
        digest = hashlib.md5(f"e2e:{name}".encode()).hexdigest()
        assert f"{tmp_path / 'd'}/e2e/{digest[:2]}/{digest[2:4]}/{name}" in replicas
    assert "open:" in shown and "False" in shown.split("open:")[1].split("\n")[0]
    assert "length:          2" in shown and "bytes:           3072" in shown
    for did in ("e2e:ds1", "e2e:f1", "e2e:f2"):
        assert did in all_dids
    assert by_meta.split() == ["e2e:ds1"]
    files = rucio("--legacy", "list-files", "e2e:ds1").stdout
    assert "e2e:f1" in files and "Total files : 2" in files


@pytest.mark.rucio_commands("rucio did show", "rucio scope add")
def test_unknown_did_is_a_clean_error(rucio: RucioCLI) -> None:
    rucio("scope", "add", "e2e", "--account", "root")
    result = rucio("did", "show", "e2e:nothing", check=False)
    assert result.returncode == 1
    assert "Data identifier not found" in result.stderr
    assert "Details: Data identifier 'e2e:nothing' not found" in result.stderr


@pytest.mark.rucio_commands(
    "rucio --legacy add-rule",
    "rucio --legacy delete-rule",
    "rucio --legacy list-rules",
    "rucio --legacy rule-info",
    "rucio did add",
    "rucio did content add",
    "rucio rse add",
    "rucio rse attribute set",
    "rucio rse protocol add",
    "rucio rule add",
    "rucio rule list",
    "rucio rule remove",
    "rucio rule show",
    "rucio scope add",
    "rucio upload",
)
@pytest.mark.parametrize("legacy", [False, True], ids=["new", "legacy"])
def test_upload_and_rules(rucio: RucioCLI, tmp_path: Path, legacy: bool) -> None:
    add_file_rse(rucio, "SITE-U", tmp_path / "u")
    rucio("rse", "attribute", "set", "SITE-U", "--key", "tier", "--value", "1")
    rucio("scope", "add", "up", "--account", "root")
    sources = []
    for name, size in (("u1", 1024), ("u2", 2048)):
        path = tmp_path / name
        path.write_bytes(bytes(range(256)) * (size // 256))
        sources.append(str(path))
    rucio("upload", "--rse", "SITE-U", "--scope", "up", *sources)
    for name in ("u1", "u2"):
        digest = hashlib.md5(f"up:{name}".encode()).hexdigest()
        stored = tmp_path / "u" / "up" / digest[:2] / digest[2:4] / name
        assert stored.read_bytes() == (tmp_path / name).read_bytes()
    rucio("did", "add", "--type", "dataset", "up:uds")
    rucio("did", "content", "add", "--to-did", "up:uds", "up:u1", "up:u2")
    if legacy:
        rule_id = rucio("add-rule", "up:uds", "1", "tier=1").stdout.strip().splitlines()[-1]
        by_did = rucio("list-rules", "up:uds").stdout
        by_account = rucio("list-rules", "--account", "root").stdout
        info = rucio("rule-info", rule_id).stdout
        rucio("delete-rule", rule_id)
    else:
        rule_id = (
            rucio("rule", "add", "up:uds", "--copies", "1", "--rses", "tier=1")
            .stdout.strip()
            .splitlines()[-1]
        )
        by_did = rucio("rule", "list", "--did", "up:uds").stdout
        by_account = rucio("rule", "list", "--account", "root").stdout
        info = rucio("rule", "show", rule_id).stdout
        rucio("rule", "remove", rule_id)
    assert len(rule_id) == 32
    assert rule_id in by_did and rule_id in by_account
    assert "up:u1" in by_account  # the per-file rules of the upload
    assert "OK" in info and "tier=1" in info
    # Deletion is soft, as in Rucio: the rule stays listed, now expiring within the hour.
    listed = [
        line for line in rucio("rule", "list", "--did", "up:uds").stdout.splitlines() if rule_id in line
    ]
    assert len(listed) == 1 and listed[0].count(time.strftime("%Y-", time.gmtime())) == 2, listed


@pytest.mark.rucio_commands(
    "rucio rse add",
    "rucio rse protocol add",
    "rucio rule list",
    "rucio scope add",
    "rucio upload",
)
def test_upload_to_an_rse_whose_protocol_uses_our_short_impl(rucio: RucioCLI, tmp_path: Path) -> None:
    """RSEs made by our own tools store ``impl = posix``; the stock client must still load a protocol."""
    add_file_rse(rucio, "SITE-S", tmp_path / "s", impl="posix")
    rucio("scope", "add", "short", "--account", "root")
    source = tmp_path / "s1"
    source.write_bytes(b"short impl" * 100)
    rucio("upload", "--rse", "SITE-S", "--scope", "short", str(source))
    digest = hashlib.md5(b"short:s1").hexdigest()
    assert (tmp_path / "s" / "short" / digest[:2] / digest[2:4] / "s1").read_bytes() == source.read_bytes()
    rules = rucio("rule", "list", "--did", "short:s1").stdout
    assert "OK[1/0/0]" in rules, rules  # the upload's PUT /replicas (state A) turned its lock OK


@pytest.mark.rucio_commands(
    "rucio did add",
    "rucio did content add",
    "rucio download",
    "rucio rse add",
    "rucio rse protocol add",
    "rucio scope add",
    "rucio upload",
)
def test_download_files_and_a_dataset(rucio: RucioCLI, tmp_path: Path) -> None:
    """``rucio download`` asks for Metalink 4 and verifies the checksums of what it fetched."""
    add_file_rse(rucio, "SITE-D", tmp_path / "d")
    rucio("scope", "add", "dl", "--account", "root")
    sources = []
    for name in ("d1", "d2"):
        (tmp_path / name).write_bytes(name.encode() * 700)
        sources.append(str(tmp_path / name))
    rucio("upload", "--rse", "SITE-D", "--scope", "dl", *sources)
    rucio("did", "add", "--type", "dataset", "dl:dds")
    rucio("did", "content", "add", "--to-did", "dl:dds", "dl:d1", "dl:d2")
    target = tmp_path / "out"
    rucio("download", "--dir", str(target), "dl:d1")  # the same command in both styles
    rucio("download", "--dir", str(target / "ds"), "dl:dds")
    assert (target / "dl" / "d1").read_bytes() == (tmp_path / "d1").read_bytes()
    for name in ("d1", "d2"):
        assert (target / "ds" / "dds" / name).read_bytes() == (tmp_path / name).read_bytes()

"""The stock rucio 41 CLIs' account, identity and RSE management commands against our server.

Each scenario runs in the new ``rucio <noun> <verb>`` style and in the legacy one
(``rucio-admin``), which send the same requests; the outputs are checked, not only the exit codes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.api.conftest import RucioCLI, add_file_rse

pytestmark = [pytest.mark.integration, pytest.mark.long]
STYLES = pytest.mark.parametrize("legacy", [False, True], ids=["new", "legacy"])


@STYLES
@pytest.mark.rucio_commands(
    "rucio account add",
    "rucio account list",
    "rucio account show",
    "rucio account update",
    "rucio account attribute set",
    "rucio account attribute list",
    "rucio account attribute unset",
    "rucio account remove",
    "rucio-admin account add",
    "rucio-admin account list",
    "rucio-admin account info",
    "rucio-admin account update",
    "rucio-admin account add-attribute",
    "rucio-admin account list-attributes",
    "rucio-admin account delete-attribute",
    "rucio-admin account ban",
    "rucio-admin account unban",
    "rucio-admin account delete",
)
def test_accounts(rucio: RucioCLI, legacy: bool) -> None:
    if legacy:
        rucio.admin("account", "add", "--type", "USER", "--email", "jane@example.org", "jane")
        listed = rucio.admin("account", "list", "--type", "USER").stdout
        rucio.admin("account", "update", "--account", "jane", "--key", "email", "--value", "j@example.org")
        info = rucio.admin("account", "info", "jane").stdout
        rucio.admin("account", "add-attribute", "--key", "country", "--value", "fr", "jane")
        attributes = rucio.admin("account", "list-attributes", "jane").stdout
        rucio.admin("account", "delete-attribute", "--key", "country", "jane")
        remaining = rucio.admin("account", "list-attributes", "jane").stdout
        rucio.admin("account", "ban", "--account", "jane")
        banned = rucio.admin("account", "info", "jane").stdout
        rucio.admin("account", "unban", "--account", "jane")
        assert "ACTIVE" in rucio.admin("account", "info", "jane").stdout
        rucio.admin("account", "delete", "jane")
        gone = rucio.admin("account", "info", "jane", check=False)
    else:
        rucio("account", "add", "jane", "USER", "--email", "jane@example.org")
        listed = rucio("account", "list", "--type", "USER").stdout
        rucio("account", "update", "jane", "--email", "j@example.org")
        info = rucio("account", "show", "jane").stdout
        rucio("account", "attribute", "set", "jane", "--key", "country", "--value", "fr")
        attributes = rucio("account", "attribute", "list", "jane").stdout
        rucio("account", "attribute", "unset", "jane", "--key", "country")
        remaining = rucio("account", "attribute", "list", "jane").stdout
        rucio("account", "update", "jane", "--ban")
        banned = rucio("account", "show", "jane").stdout
        rucio("account", "remove", "jane")
        gone = rucio("account", "show", "jane", check=False)
    assert "jane" in listed.split() and "root" not in listed.split()
    assert "j@example.org" in info and "USER" in info
    assert "country" in attributes and "fr" in attributes
    assert "country" not in remaining
    assert "SUSPENDED" in banned
    assert gone.returncode != 0 and "jane" in gone.stderr


@STYLES
@pytest.mark.rucio_commands(
    "rucio account identity add",
    "rucio account identity list",
    "rucio account identity remove",
    "rucio account add",
    "rucio-admin account add",
    "rucio-admin identity add",
    "rucio-admin account list-identities",
    "rucio-admin identity delete",
)
def test_identities(rucio: RucioCLI, legacy: bool) -> None:
    dn = "/DC=org/DC=example/CN=Jane Doe"
    if legacy:
        rucio.admin("account", "add", "--type", "USER", "jane")
        rucio.admin(
            "identity", "add", "--account", "jane", "--type", "X509", "--id", dn, "--email", "j@example.org"
        )
        listed = rucio.admin("account", "list-identities", "jane").stdout
        rucio.admin("identity", "delete", "--account", "jane", "--type", "X509", "--id", dn)
        after = rucio.admin("account", "list-identities", "jane").stdout
    else:
        rucio("account", "add", "jane", "USER")
        rucio("account", "identity", "add", "jane", "--type", "X509", "--id", dn, "--email", "j@example.org")
        listed = rucio("account", "identity", "list", "jane").stdout
        rucio("account", "identity", "remove", "jane", "--type", "X509", "--id", dn)
        after = rucio("account", "identity", "list", "jane").stdout
    assert dn in listed and "X509" in listed
    assert dn not in after


@STYLES
@pytest.mark.rucio_commands(
    "rucio rse add",
    "rucio rse protocol add",
    "rucio rse list",
    "rucio rse update",
    "rucio rse show",
    "rucio rse attribute set",
    "rucio rse attribute unset",
    "rucio rse attribute list",
    "rucio rse distance set",
    "rucio rse distance show",
    "rucio rse distance unset",
    "rucio rse limit set",
    "rucio rse limit unset",
    "rucio rse protocol remove",
    "rucio rse remove",
    "rucio account limit set",
    "rucio account limit unset",
    "rucio account limit list",
    "rucio-admin rse add",
    "rucio-admin rse add-protocol",
    "rucio-admin rse list",
    "rucio-admin rse update",
    "rucio-admin rse info",
    "rucio-admin rse set-attribute",
    "rucio-admin rse delete-attribute",
    "rucio-admin rse get-attribute",
    "rucio-admin rse add-distance",
    "rucio-admin rse update-distance",
    "rucio-admin rse get-distance",
    "rucio-admin rse delete-distance",
    "rucio-admin rse set-limit",
    "rucio-admin rse delete-limit",
    "rucio-admin rse delete-protocol",
    "rucio-admin rse delete",
    "rucio-admin account set-limits",
    "rucio-admin account delete-limits",
    "rucio-admin account get-limits",
)
def test_rse_lifecycle(rucio: RucioCLI, tmp_path: Path, legacy: bool) -> None:
    for rse in ("SITE-A", "SITE-B"):
        add_file_rse(rucio, rse, tmp_path / rse, legacy)
    if legacy:
        listed = rucio.admin("rse", "list").stdout
        rucio.admin("rse", "update", "--rse", "SITE-A", "--setting", "availability_write", "--value", "False")
        info = rucio.admin("rse", "info", "SITE-A").stdout
        rucio.admin("rse", "set-attribute", "--rse", "SITE-A", "--key", "site", "--value", "cern")
        rucio.admin("rse", "delete-attribute", "--rse", "SITE-A", "--key", "site", "--value", "cern")
        attributes = rucio.admin("rse", "get-attribute", "SITE-A").stdout
        rucio.admin("rse", "add-distance", "--distance", "3", "SITE-A", "SITE-B")
        rucio.admin("rse", "update-distance", "--distance", "4", "SITE-A", "SITE-B")
        distance = rucio.admin("rse", "get-distance", "SITE-A", "SITE-B").stdout
        rucio.admin("rse", "delete-distance", "SITE-A", "SITE-B")
        no_distance = rucio.admin("rse", "get-distance", "SITE-A", "SITE-B", check=False)
        rucio.admin("rse", "set-limit", "SITE-A", "MinFreeSpace", "1000")
        limited = rucio.admin("rse", "info", "SITE-A").stdout
        rucio.admin("rse", "delete-limit", "SITE-A", "MinFreeSpace")
        unlimited = rucio.admin("rse", "info", "SITE-A").stdout
        rucio.admin("account", "set-limits", "root", "SITE-B", "10GB")
        limits = rucio.admin("account", "get-limits", "root", "SITE-B").stdout
        rucio.admin("account", "delete-limits", "root", "SITE-B")
        no_limits = rucio.admin("account", "get-limits", "root", "SITE-B").stdout
        rucio.admin("rse", "delete-protocol", "--scheme", "file", "SITE-B")
        protocols = rucio.admin("rse", "info", "SITE-B").stdout
        rucio.admin("rse", "delete", "SITE-B")
        after = rucio.admin("rse", "list").stdout
    else:
        listed = rucio("rse", "list").stdout
        rucio("rse", "update", "SITE-A", "--key", "availability_write", "--value", "False")
        info = rucio("rse", "show", "SITE-A").stdout
        rucio("rse", "attribute", "set", "SITE-A", "--key", "site", "--value", "cern")
        rucio("rse", "attribute", "unset", "SITE-A", "--attribute", "site")
        attributes = rucio("rse", "attribute", "list", "SITE-A").stdout
        rucio("rse", "distance", "set", "SITE-A", "SITE-B", "--distance", "4")
        distance = rucio("rse", "distance", "show", "SITE-A", "SITE-B").stdout
        rucio("rse", "distance", "unset", "SITE-A", "SITE-B")
        no_distance = rucio("rse", "distance", "show", "SITE-A", "SITE-B", check=False)
        rucio("rse", "limit", "set", "SITE-A", "--limit", "MinFreeSpace", "1000")
        limited = rucio("rse", "show", "SITE-A").stdout
        rucio("rse", "limit", "unset", "SITE-A", "--limit", "MinFreeSpace")
        unlimited = rucio("rse", "show", "SITE-A").stdout
        rucio("account", "limit", "set", "root", "--rse", "SITE-B", "--bytes", "10GB")
        limits = rucio("account", "limit", "list", "root", "--rse", "SITE-B").stdout
        rucio("account", "limit", "unset", "root", "--rse", "SITE-B")
        no_limits = rucio("account", "limit", "list", "root", "--rse", "SITE-B").stdout
        rucio("rse", "protocol", "remove", "SITE-B", "--scheme", "file")
        protocols = rucio("rse", "show", "SITE-B").stdout
        rucio("rse", "remove", "SITE-B")
        after = rucio("rse", "list").stdout
    assert {"SITE-A", "SITE-B"} <= set(listed.split())
    assert "availability_write: False" in info
    assert "site: cern" not in attributes and "SITE-A: True" in attributes
    assert "distance=4" in distance or "4" in distance.split()
    assert no_distance.returncode == 0 and "distance=4" not in no_distance.stdout
    assert "MinFreeSpace: 1000" in limited and "MinFreeSpace" not in unlimited
    assert "10.000 GB" in limits or "10.000GB" in limits.replace(" ", "")
    assert "10.000" not in no_limits
    assert "scheme: file" not in protocols
    assert "SITE-B" not in after.split() and "SITE-A" in after.split()

"""The stock rucio 41 CLIs' namespace, replica, rule and subscription commands against our server.

Each scenario runs in the new ``rucio <noun> <verb>`` style and in the legacy one, which send
the same requests; outputs are checked, not only exit codes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.api.conftest import RucioCLI, add_file_rse, register_files

pytestmark = pytest.mark.integration
STYLES = pytest.mark.parametrize("legacy", [False, True], ids=["new", "legacy"])


def _catalogue(rucio: RucioCLI, tmp_path: Path, files: tuple[str, ...] = ("f1", "f2")) -> None:
    """RSE ``SITE`` (tier=1), scope ``ns``, files registered on it, and the dataset ``ns:ds`` holding them."""
    add_file_rse(rucio, "SITE", tmp_path / "site")
    rucio("rse", "attribute", "set", "SITE", "--key", "tier", "--value", "1")
    rucio("scope", "add", "ns", "--account", "root")
    register_files(rucio, "SITE", "ns", list(files))
    rucio("did", "add", "--type", "dataset", "ns:ds")
    rucio("did", "content", "add", "--to-did", "ns:ds", *(f"ns:{name}" for name in files))


_SETUP = (
    "rucio rse add",
    "rucio rse protocol add",
    "rucio rse attribute set",
    "rucio scope add",
    "rucio did add",
    "rucio did content add",
)


@STYLES
@pytest.mark.rucio_commands(
    *_SETUP,
    "rucio did list",
    "rucio did content remove",
    "rucio did metadata set",
    "rucio did metadata unset",
    "rucio did metadata list",
    "rucio did update",
    "rucio did show",
    "rucio did remove",
    "rucio scope list",
    "rucio --legacy add-container",
    "rucio --legacy attach",
    "rucio --legacy list-parent-dids",
    "rucio --legacy list-parent-datasets",
    "rucio --legacy detach",
    "rucio --legacy set-metadata",
    "rucio --legacy delete-metadata",
    "rucio --legacy get-metadata",
    "rucio --legacy close",
    "rucio --legacy reopen",
    "rucio --legacy touch",
    "rucio --legacy stat",
    "rucio --legacy erase",
    "rucio --legacy ls",
    "rucio --legacy list-scopes",
)
def test_namespace(rucio: RucioCLI, tmp_path: Path, legacy: bool) -> None:
    _catalogue(rucio, tmp_path)
    if legacy:
        rucio("add-container", "ns:cont")
        rucio("attach", "ns:cont", "ns:ds")
        parents = rucio("list-parent-dids", "ns:ds").stdout
        datasets = rucio("list-parent-datasets", "ns:f1").stdout
        rucio("detach", "ns:ds", "ns:f2")
        rucio("set-metadata", "--did", "ns:ds", "--key", "run", "--value", "7")
        rucio("delete-metadata", "--did", "ns:ds", "--key", "run")
        metadata = rucio("get-metadata", "ns:ds").stdout
        rucio("close", "ns:ds")
        rucio("reopen", "ns:ds")
        reopened = rucio("stat", "ns:ds").stdout
        rucio("touch", "ns:ds")
        rucio("erase", "ns:cont")
        erased = rucio("stat", "ns:cont").stdout
        listed = rucio("ls", "ns:*").stdout
        scopes = rucio("list-scopes").stdout
    else:
        rucio("did", "add", "--type", "container", "ns:cont")
        rucio("did", "content", "add", "--to-did", "ns:cont", "ns:ds")
        parents = rucio("did", "list", "--parent", "ns:ds").stdout
        datasets = rucio("did", "list", "--parent", "ns:f1").stdout
        rucio("did", "content", "remove", "--from-did", "ns:ds", "ns:f2")
        rucio("did", "metadata", "set", "ns:ds", "--key", "run", "--value", "7")
        rucio("did", "metadata", "unset", "ns:ds", "--key", "run")
        metadata = rucio("did", "metadata", "list", "ns:ds").stdout
        rucio("did", "update", "--close", "ns:ds")
        rucio("did", "update", "--open", "ns:ds")
        reopened = rucio("did", "show", "ns:ds").stdout
        rucio("did", "update", "--touch", "ns:ds")
        rucio("did", "remove", "ns:cont")
        erased = rucio("did", "show", "ns:cont").stdout
        listed = rucio("did", "list", "ns:*").stdout
        scopes = rucio("scope", "list").stdout
    assert "ns:cont" in parents and "ns:ds" in datasets
    assert "run:" not in metadata and "7" not in metadata.split()
    assert re.search(r"^open:\s+True$", reopened, re.M), reopened
    assert "expired_at" in erased and "None" not in [
        line.split(":", 1)[1].strip() for line in erased.splitlines() if line.startswith("expired_at")
    ]
    assert "ns:ds" in listed and "ns:cont" in listed
    assert "ns" in scopes.split()


@STYLES
@pytest.mark.rucio_commands(
    *_SETUP,
    "rucio rse attribute list",
    "rucio --legacy list-rse-usage",
    "rucio --legacy list-rse-attributes",
    "rucio --legacy list-account-limits",
    "rucio-admin account set-limits",
    "rucio-admin replicas list-pfns",
)
def test_replica_listings(rucio: RucioCLI, tmp_path: Path, legacy: bool) -> None:
    _catalogue(rucio, tmp_path)
    if legacy:
        usage = rucio("list-rse-usage", "SITE").stdout
        attributes = rucio("list-rse-attributes", "SITE").stdout
        rucio.admin("account", "set-limits", "root", "SITE", "1GB")
        limits = rucio("list-account-limits", "root").stdout
        pfns = rucio.admin("replicas", "list-pfns", "ns:f1", "SITE", "file").stdout
        assert str(tmp_path / "site") in pfns and pfns.strip().endswith("/f1")
        assert "SITE" in limits and "1.000 GB" in limits and "SITE" in usage
    else:
        attributes = rucio("rse", "attribute", "list", "SITE").stdout
    assert re.search(r"^tier:\s+1$", attributes, re.M), attributes


@STYLES
@pytest.mark.rucio_commands(
    *_SETUP,
    "rucio rule add",
    "rucio rule update",
    "rucio rule show",
    "rucio rule move",
    "rucio rule list",
    "rucio --legacy add-rule",
    "rucio --legacy update-rule",
    "rucio --legacy rule-info",
    "rucio --legacy move-rule",
    "rucio --legacy list-rules",
)
def test_rule_changes(rucio: RucioCLI, tmp_path: Path, legacy: bool) -> None:
    _catalogue(rucio, tmp_path)
    add_file_rse(rucio, "OTHER", tmp_path / "other")
    if legacy:
        rule_id = rucio("add-rule", "ns:ds", "1", "SITE").stdout.strip().splitlines()[-1]
        rucio(
            "update-rule",
            "--lifetime",
            "3600",
            "--comment",
            "kept for a run",
            "--source-replica-expression",
            "SITE",
            "--boost-rule",
            rule_id,
        )
        info = rucio("rule-info", rule_id).stdout
        rucio("update-rule", "--suspend", rule_id)
        suspended = rucio("rule-info", rule_id).stdout
        rucio("update-rule", "--stuck", rule_id)
        resumed = rucio("rule-info", rule_id).stdout
        child = rucio("move-rule", rule_id, "OTHER").stdout.strip().splitlines()[-1]
        listed = rucio("list-rules", "ns:ds").stdout
    else:
        rule_id = (
            rucio("rule", "add", "ns:ds", "--copies", "1", "--rses", "SITE").stdout.strip().splitlines()[-1]
        )
        rucio(
            "rule",
            "update",
            rule_id,
            "--lifetime",
            "3600",
            "--comment",
            "kept for a run",
            "--source-rses",
            "SITE",
            "--boost-rule",
        )
        info = rucio("rule", "show", rule_id).stdout
        rucio("rule", "update", rule_id, "--suspend")
        suspended = rucio("rule", "show", rule_id).stdout
        rucio("rule", "update", rule_id, "--stuck")
        resumed = rucio("rule", "show", rule_id).stdout
        child = rucio("rule", "move", rule_id, "--rses", "OTHER").stdout.strip().splitlines()[-1]
        listed = rucio("rule", "list", "--did", "ns:ds").stdout
    assert (
        "kept for a run" in info
        and "Expires at:" in info
        and "None" not in info.split("Expires at:")[1].split("\n")[0]
    )
    assert re.search(r"Source replica expression:\s+SITE$", info, re.M), info
    # suspended by hand, then set STUCK: every lock is OK, so the rule is OK again
    assert re.search(r"^State:\s+SUSPENDED$", suspended, re.M), suspended
    assert re.search(r"^State:\s+OK$", resumed, re.M), resumed
    assert len(child) == 32 and child != rule_id
    assert child in listed and "OTHER" in listed


@STYLES
@pytest.mark.rucio_commands(
    *_SETUP,
    "rucio rule add",
    "rucio rule update",
    "rucio rule list",
    "rucio --legacy add-rule",
    "rucio --legacy update-rule",
    "rucio --legacy list-rules",
)
def test_rule_replaced_by_its_child_rule(rucio: RucioCLI, tmp_path: Path, legacy: bool) -> None:
    """``--child-rule-id``: the parent goes once its child is OK, here at once."""
    _catalogue(rucio, tmp_path)
    add_file_rse(rucio, "OTHER", tmp_path / "other")
    if legacy:
        parent = rucio("add-rule", "ns:ds", "1", "SITE").stdout.strip().splitlines()[-1]
        child = rucio("add-rule", "ns:ds", "1", "SITE|OTHER").stdout.strip().splitlines()[-1]
        rucio("update-rule", "--child-rule-id", child, parent)
        listed = rucio("list-rules", "ns:ds").stdout
    else:
        parent = (
            rucio("rule", "add", "ns:ds", "--copies", "1", "--rses", "SITE").stdout.strip().splitlines()[-1]
        )
        child = (
            rucio("rule", "add", "ns:ds", "--copies", "1", "--rses", "SITE|OTHER")
            .stdout.strip()
            .splitlines()[-1]
        )
        rucio("rule", "update", parent, "--child-rule-id", child)
        listed = rucio("rule", "list", "--did", "ns:ds").stdout
    assert child in listed and parent not in listed, listed


@STYLES
@pytest.mark.rucio_commands(
    "rucio subscription add",
    "rucio subscription list",
    "rucio subscription show",
    "rucio subscription update",
    "rucio subscription touch",
    "rucio scope add",
    "rucio did add",
    "rucio-admin subscription add",
    "rucio-admin subscription list",
    "rucio-admin subscription update",
    "rucio-admin subscription reevaluate",
)
def test_subscriptions(rucio: RucioCLI, legacy: bool) -> None:
    rucio("scope", "add", "ns", "--account", "root")
    rucio("did", "add", "--type", "dataset", "ns:raw1")
    rules = '[{"copies": 1, "rse_expression": "tier=1", "activity": "User Subscriptions"}]'
    if legacy:
        rucio.admin("subscription", "add", "raw", '{"scope": ["ns"]}', rules, "raw data")
        listed = rucio.admin("subscription", "list", "raw").stdout
        rucio.admin(
            "subscription",
            "update",
            "--lifetime",
            "7",
            "raw",
            '{"scope": ["ns"], "project": ["x"]}',
            rules,
            "raw data, project x",
        )
        updated = rucio.admin("subscription", "list", "--long", "raw").stdout
        rucio.admin("subscription", "reevaluate", "ns:raw1")
    else:
        rucio(
            "subscription",
            "add",
            "raw",
            "--filter",
            '{"scope": ["ns"]}',
            "--rule",
            rules,
            "--comment",
            "raw data",
        )
        listed = rucio("subscription", "list").stdout
        rucio(
            "subscription",
            "update",
            "raw",
            "--filter",
            '{"scope": ["ns"], "project": ["x"]}',
            "--rule",
            rules,
            "--comment",
            "raw data, project x",
            "--lifetime",
            "7",
        )
        updated = rucio("subscription", "show", "raw", "--long").stdout
        rucio("subscription", "touch", "ns:raw1")
    assert "raw" in listed
    assert "project" in updated


@pytest.mark.rucio_commands(
    "rucio --legacy ping",
    "rucio --legacy whoami",
    "rucio --legacy upload",
    "rucio --legacy get",
    "rucio --legacy download",
    "rucio rse add",
    "rucio rse protocol add",
    "rucio scope add",
    "rucio scope update",
    "rucio scope list",
    "rucio account add",
)
def test_legacy_spellings_and_scope_owner(rucio: RucioCLI, tmp_path: Path) -> None:
    """Commands both styles share, spelled with ``--legacy``; and the scope owner change."""
    assert rucio("--legacy", "ping").stdout.strip()
    assert "account    : root" in rucio("--legacy", "whoami").stdout
    add_file_rse(rucio, "SITE", tmp_path / "site")
    rucio("scope", "add", "up", "--account", "root")
    (tmp_path / "l1").write_bytes(b"legacy upload" * 50)
    rucio("--legacy", "upload", "--rse", "SITE", "--scope", "up", str(tmp_path / "l1"))
    rucio("--legacy", "get", "--dir", str(tmp_path / "got"), "up:l1")
    rucio("--legacy", "download", "--dir", str(tmp_path / "down"), "up:l1")
    for target in ("got", "down"):
        assert (tmp_path / target / "up" / "l1").read_bytes() == (tmp_path / "l1").read_bytes()
    rucio("account", "add", "jane", "USER")
    rucio("scope", "update", "up", "--account", "jane")
    assert "up" in rucio("scope", "list", "--account", "jane").stdout.split()

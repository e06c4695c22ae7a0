"""The stock rucio 41 CLIs' config, QoS, export/import, dataset replicas, histories, bad replicas,
open data and lifetime exceptions against our server, in both command styles where both exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.integration.api.conftest import RucioCLI, add_file_rse
from tests.integration.api.test_rucio_cli_data import _SETUP, _catalogue

pytestmark = pytest.mark.integration
STYLES = pytest.mark.parametrize("legacy", [False, True], ids=["new", "legacy"])


@STYLES
@pytest.mark.rucio_commands(
    "rucio config set",
    "rucio config list",
    "rucio config unset",
    "rucio-admin config set",
    "rucio-admin config get",
    "rucio-admin config delete",
)
def test_config(rucio: RucioCLI, legacy: bool) -> None:
    if legacy:
        rucio.admin("config", "set", "--section", "webui", "--option", "banner", "--value", "maintenance")
        shown = rucio.admin("config", "get", "--section", "webui").stdout
        rucio.admin("config", "delete", "--section", "webui", "--option", "banner")
        after = rucio.admin("config", "get", "--section", "webui", check=False)
    else:
        rucio("config", "set", "--section", "webui", "--key", "banner", "--value", "maintenance")
        shown = rucio("config", "list", "--section", "webui").stdout
        rucio("config", "unset", "--section", "webui", "--key", "banner")
        after = rucio("config", "list", "--section", "webui", check=False)
    assert "banner" in shown and "maintenance" in shown
    assert "maintenance" not in after.stdout


@STYLES
@pytest.mark.rucio_commands(
    "rucio rse add",
    "rucio rse protocol add",
    "rucio rse qos add",
    "rucio rse qos list",
    "rucio rse qos remove",
    "rucio-admin rse add",
    "rucio-admin rse add-protocol",
    "rucio-admin rse add-qos-policy",
    "rucio-admin rse list-qos-policies",
    "rucio-admin rse delete-qos-policy",
)
def test_rse_qos_policies(rucio: RucioCLI, tmp_path: Path, legacy: bool) -> None:
    add_file_rse(rucio, "SITE", tmp_path / "site", legacy)
    if legacy:
        rucio.admin("rse", "add-qos-policy", "SITE", "SSD")
        listed = rucio.admin("rse", "list-qos-policies", "SITE").stdout
        rucio.admin("rse", "delete-qos-policy", "SITE", "SSD")
        after = rucio.admin("rse", "list-qos-policies", "SITE").stdout
    else:
        rucio("rse", "qos", "add", "SITE", "--policy", "SSD")
        listed = rucio("rse", "qos", "list", "SITE").stdout
        rucio("rse", "qos", "remove", "SITE", "--policy", "SSD")
        after = rucio("rse", "qos", "list", "SITE").stdout
    assert "SSD" in listed and "SSD" not in after


@pytest.mark.rucio_commands(
    "rucio rse add",
    "rucio rse protocol add",
    "rucio rse attribute list",
    "rucio-admin data export",
    "rucio-admin data import",
)
def test_export_and_import(rucio: RucioCLI, tmp_path: Path) -> None:
    add_file_rse(rucio, "SITE", tmp_path / "site")
    exported = tmp_path / "export.json"
    rucio.admin("data", "export", str(exported))
    document = json.loads(exported.read_text())
    assert "SITE" in document["rses"]
    document["rses"]["SITE"].setdefault("attributes", {})["country"] = "ch"
    changed = tmp_path / "import.json"
    changed.write_text(json.dumps({"rses": {"SITE": document["rses"]["SITE"]}}))
    rucio.admin("data", "import", str(changed))
    assert re.search(r"^country:\s+ch$", rucio("rse", "attribute", "list", "SITE").stdout, re.M)


@STYLES
@pytest.mark.rucio_commands(
    *_SETUP,
    "rucio replica list dataset",
    "rucio did content remove",
    "rucio did content history",
    "rucio rule add",
    "rucio rule history",
    "rucio --legacy list-dataset-replicas",
    "rucio --legacy list-datasets-rse",
    "rucio --legacy detach",
    "rucio --legacy list-content-history",
    "rucio --legacy add-rule",
    "rucio --legacy list-rules-history",
)
def test_dataset_replicas_and_histories(rucio: RucioCLI, tmp_path: Path, legacy: bool) -> None:
    _catalogue(rucio, tmp_path)
    if legacy:
        replicas = rucio("list-dataset-replicas", "ns:ds").stdout
        on_rse = rucio("list-datasets-rse", "SITE").stdout
        rucio("detach", "ns:ds", "ns:f2")
        history = rucio("list-content-history", "ns:ds").stdout
        rule_id = rucio("add-rule", "ns:ds", "1", "SITE").stdout.strip().splitlines()[-1]
        rules = rucio("list-rules-history", "ns:ds").stdout
    else:
        replicas = rucio("replica", "list", "dataset", "ns:ds").stdout
        on_rse = rucio("replica", "list", "dataset", "--rse", "SITE").stdout
        rucio("did", "content", "remove", "--from-did", "ns:ds", "ns:f2")
        history = rucio("did", "content", "history", "ns:ds").stdout
        rule_id = (
            rucio("rule", "add", "ns:ds", "--copies", "1", "--rses", "SITE").stdout.strip().splitlines()[-1]
        )
        rules = rucio("rule", "history", "ns:ds").stdout
    assert "SITE" in replicas and "ds" in replicas
    assert "ds" in on_rse
    assert "f2" in history
    assert len(rule_id) == 32 and "Rule insertion" in rules and "RSE expression : SITE" in rules


@STYLES
@pytest.mark.rucio_commands(
    *_SETUP,
    "rucio replica state update bad",
    "rucio replica state update unavailable",
    "rucio replica state list",
    "rucio replica remove",
    "rucio-admin replicas declare-bad",
    "rucio-admin replicas declare-temporary-unavailable",
    "rucio-admin replicas quarantine",
    "rucio-admin replicas set-tombstone",
    "rucio --legacy list-suspicious-replicas",
)
def test_bad_and_unavailable_replicas(rucio: RucioCLI, tmp_path: Path, legacy: bool) -> None:
    _catalogue(rucio, tmp_path, files=("f1", "f2", "f3"))
    dark = str(tmp_path / "site" / "ns" / "dark-file")
    f2 = _pfn(rucio, "ns", "f2")
    if legacy:
        rucio.admin("replicas", "declare-bad", "--reason", "checksum mismatch", "ns:f1")
        rucio.admin(
            "replicas",
            "declare-temporary-unavailable",
            "--reason",
            "disk server down",
            "--duration",
            "3600",
            f2,
        )
        rucio.admin("replicas", "quarantine", "--rse", "SITE", dark)
        rucio.admin("replicas", "set-tombstone", "--rse", "SITE", "ns:f3")
        suspicious = rucio("list-suspicious-replicas").stdout
        assert "f1" not in suspicious  # declared bad, not suspicious
    else:
        rucio("replica", "state", "update", "bad", "ns:f1", "--reason", "checksum mismatch")
        rucio(
            "replica",
            "state",
            "update",
            "unavailable",
            f2,
            "--reason",
            "disk server down",
            "--duration",
            "3600",
        )
        rucio("replica", "remove", "--rse", "SITE", "ns:f3")
        suspicious = rucio("replica", "state", "list", "suspicious").stdout
        assert "f1" not in suspicious
    states = {line.split()[0]: line for line in _replica_states(rucio)}
    assert "BAD" in states["ns:f1"] and "TEMPORARY_UNAVAILABLE" in states["ns:f2"]


def _pfn(rucio: RucioCLI, scope: str, name: str) -> str:
    """The PFN the server lists for a file (the stock client declares unavailability by PFN only)."""
    code = (
        "from rucio.client.replicaclient import ReplicaClient\n"
        f"(rep,) = ReplicaClient().list_replicas([{{'scope': {scope!r}, 'name': {name!r}}}])\n"
        "print(next(iter(rep['pfns'])))\n"
    )
    return rucio.run("python", "-c", code).stdout.strip()


def _replica_states(rucio: RucioCLI) -> list[str]:
    """``scope:name state`` for every replica of ``ns``, read with the stock Python client."""
    code = (
        "from rucio.client.replicaclient import ReplicaClient\n"
        "for rep in ReplicaClient().list_replicas([{'scope': 'ns', 'name': 'ds'}], all_states=True):\n"
        "    print(f\"{rep['scope']}:{rep['name']} {' '.join(rep['states'].values())}\")\n"
    )
    return rucio.run("python", "-c", code).stdout.splitlines()


@pytest.mark.rucio_commands(
    *_SETUP,
    "rucio opendata did add",
    "rucio opendata did list",
    "rucio opendata did show",
    "rucio opendata did update",
    "rucio opendata did remove",
)
def test_opendata(rucio: RucioCLI, tmp_path: Path) -> None:
    _catalogue(rucio, tmp_path)
    rucio("opendata", "did", "add", "ns:ds")
    assert "ds" in rucio("opendata", "did", "list").stdout
    rucio("opendata", "did", "update", "ns:ds", "--meta", '{"title": "Open run 7"}')
    shown = rucio("opendata", "did", "show", "ns:ds", "--meta").stdout
    assert "Open run 7" in shown
    rucio("opendata", "did", "remove", "ns:ds")
    assert "ds" not in rucio("opendata", "did", "list").stdout


@pytest.mark.rucio_commands(*_SETUP, "rucio did remove", "rucio --legacy add-lifetime-exception")
def test_lifetime_exception(rucio: RucioCLI, tmp_path: Path) -> None:
    """A dataset whose lifetime runs out (``did remove`` gives it a day) asks for an exception."""
    _catalogue(rucio, tmp_path)
    rucio("did", "remove", "ns:ds")
    dids = tmp_path / "dids.txt"
    dids.write_text("ns:ds\n")
    result = rucio(
        "add-lifetime-exception",
        "--inputfile",
        str(dids),
        "--reason",
        "needed for the thesis",
        "--expiration",
        "2027-06-01",
    )
    assert re.search(r"successfully submitted including.*\s1$", result.stdout, re.M), result.stdout
    code = (
        "from rucio.client.lifetimeclient import LifetimeClient\n"
        "print([e['name'] for e in LifetimeClient().list_exceptions()])\n"
    )
    assert "'ds'" in rucio.run("python", "-c", code).stdout

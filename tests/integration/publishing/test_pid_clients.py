"""The real Handle, DataCite and local PID clients against the REST doubles, over HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from datamgmt.exceptions import PIDAlreadyExists, PIDNotFound, PIDServiceAuthenticationFailed, PIDServiceError
from datamgmt.pid import make_pid_client
from datamgmt.pid.datacite import DataCiteClient
from datamgmt.pid.handle import HandleClient, content_checksum
from tests.pid_doubles.datacite_server import DataCiteStore, make_datacite_app
from tests.pid_doubles.handle_server import HandleStore, make_handle_app
from tests.pid_doubles.samples import share
from tests.serving import serve

pytestmark = pytest.mark.integration

PREFIX = "21.T99999"
USER = f"300:{PREFIX}/USER01"
LANDING = "https://data.example.org/share/s1"


@pytest.fixture(scope="module")
def handle_server() -> Iterator[tuple[str, HandleStore]]:
    store = HandleStore()
    users = {USER: "secret", "300:21.T11111/OTHER": "other"}
    with serve(make_handle_app({PREFIX, "21.T11111"}, users, store)) as url:
        yield url, store


@pytest.fixture
def handles(handle_server: tuple[str, HandleStore]) -> HandleClient:
    return HandleClient(handle_server[0], PREFIX, USER, "secret")


def test_handle_mint_resolve_update_withdraw(handles: HandleClient, handle_server) -> None:  # noqa: ANN001
    record = share(1)
    pid = handles.mint(None, LANDING, record)
    assert pid.startswith(PREFIX + "/")
    assert handles.resolve(pid).url == LANDING and handles.resolve(pid).state == "active"
    stored = {v["type"]: v for v in handle_server[1].get(pid)["values"]}
    assert stored["CHECKSUM"]["data"]["value"] == content_checksum(record)
    assert stored["HS_ADMIN"]["data"]["value"]["handle"] == f"0.NA/{PREFIX}"
    handles.update(pid, LANDING + "/v2", record)
    assert handles.resolve(pid).url == LANDING + "/v2"
    handles.withdraw(pid)
    withdrawn = handles.resolve(pid)
    assert (withdrawn.url, withdrawn.state) == (LANDING + "/v2", "withdrawn")
    handles.update(pid, LANDING, record)
    assert handles.resolve(pid).state == "active"


def test_handle_mint_never_overwrites(handles: HandleClient) -> None:
    handles.mint("fixed-suffix", LANDING, share(1))
    with pytest.raises(PIDAlreadyExists):
        handles.mint("FIXED-suffix", LANDING, share(2))


def test_handle_auth_failures_and_unknown_handles(handle_server) -> None:  # noqa: ANN001
    url = handle_server[0]
    with pytest.raises(PIDServiceAuthenticationFailed):
        HandleClient(url, PREFIX, USER, "wrong").mint(None, LANDING, share(1))
    with pytest.raises(PIDServiceAuthenticationFailed):
        HandleClient(url, PREFIX, "300:21.T11111/OTHER", "other").mint(None, LANDING, share(1))
    with pytest.raises(PIDNotFound):
        HandleClient(url, PREFIX, USER, "secret").resolve(f"{PREFIX}/does-not-exist")
    with pytest.raises(PIDNotFound):
        HandleClient(url, PREFIX, USER, "secret").withdraw(f"{PREFIX}/does-not-exist")


def test_handle_double_speaks_the_handle_response_codes(handle_server, handles: HandleClient) -> None:  # noqa: ANN001
    url = handle_server[0]
    pid = handles.mint(None, LANDING, share(1))
    base = f"{url}/api/handles/{pid}"
    unauthenticated = requests.put(base, json={"values": []}, timeout=10)
    assert (unauthenticated.status_code, unauthenticated.json()["responseCode"]) == (401, 402)
    missing = requests.get(f"{url}/api/handles/{PREFIX}/nope", timeout=10)
    assert (missing.status_code, missing.json()["responseCode"]) == (404, 100)
    foreign = requests.get(f"{url}/api/handles/0.NOPE/x", timeout=10)
    assert (foreign.status_code, foreign.json()["responseCode"]) == (404, 301)
    only_url = requests.get(base, params={"type": "URL"}, timeout=10).json()
    assert [v["type"] for v in only_url["values"]] == ["URL"]
    no_values = requests.get(base, params={"type": "EMAIL"}, timeout=10).json()
    assert (no_values["responseCode"], no_values["values"]) == (200, [])
    auth = (f"300%3A{PREFIX}%2FUSER01", "secret")
    no_admin = requests.put(f"{url}/api/handles/{PREFIX}/fresh", json={"values": []}, auth=auth, timeout=10)
    assert (no_admin.status_code, no_admin.json()["responseCode"]) == (400, 202)
    admin = {"index": 100, "type": "HS_ADMIN", "data": {"format": "admin", "value": {"handle": "0.NA/x"}}}
    conflict = requests.put(
        base, params={"overwrite": "false"}, json={"values": [admin]}, auth=auth, timeout=10
    )
    assert (conflict.status_code, conflict.json()["responseCode"]) == (409, 101)
    deleted = requests.delete(base, auth=auth, timeout=10)
    assert (deleted.status_code, deleted.json()["responseCode"]) == (200, 1)
    assert requests.get(base, timeout=10).status_code == 404


DOI_PREFIX = "10.5072"


@pytest.fixture(scope="module")
def datacite_server() -> Iterator[tuple[str, DataCiteStore]]:
    store = DataCiteStore()
    accounts = {"EXAMPLE.DATA": ("pw", {DOI_PREFIX}), "OTHER.REPO": ("pw2", {"10.9999"})}
    with serve(make_datacite_app(accounts, store)) as url:
        yield url, store


@pytest.fixture
def dois(datacite_server) -> DataCiteClient:  # noqa: ANN001
    return DataCiteClient(datacite_server[0], DOI_PREFIX, "EXAMPLE.DATA", "pw")


def test_datacite_mint_publishes_and_withdraw_hides(dois: DataCiteClient, datacite_server) -> None:  # noqa: ANN001
    doi = dois.mint(None, LANDING, share(0))
    assert doi.startswith(DOI_PREFIX + "/")
    resolved = dois.resolve(doi)
    assert (resolved.url, resolved.state) == (LANDING, "findable")
    stored = datacite_server[1].dois[doi].attributes
    assert stored["titles"][0]["title"].startswith("Run 0") and stored["publisher"] == "Example Lab"
    dois.update(doi, LANDING + "/v2", share(0, title="Renamed"))
    assert dois.resolve(doi).url == LANDING + "/v2"
    assert datacite_server[1].dois[doi].attributes["titles"] == [{"title": "Renamed"}]
    dois.withdraw(doi)
    assert dois.resolve(doi).state == "registered"
    dois.update(doi, LANDING, share(0))
    assert dois.resolve(doi).state == "registered"


def test_datacite_conflicts_and_failed_publication_leaves_no_draft(
    dois: DataCiteClient, datacite_server
) -> None:  # noqa: ANN001
    doi = dois.mint("fixed-1", LANDING, share(0))
    assert doi == f"{DOI_PREFIX}/fixed-1"
    with pytest.raises(PIDAlreadyExists):
        dois.mint("FIXED-1", LANDING, share(0))
    with pytest.raises(PIDServiceError, match="422"):
        dois.mint("no-url", "", share(0))
    assert f"{DOI_PREFIX}/no-url" not in datacite_server[1].dois


def test_datacite_auth_and_prefix_ownership(datacite_server) -> None:  # noqa: ANN001
    url = datacite_server[0]
    with pytest.raises(PIDServiceAuthenticationFailed):
        DataCiteClient(url, DOI_PREFIX, "EXAMPLE.DATA", "wrong").mint(None, LANDING, share(0))
    with pytest.raises(PIDServiceAuthenticationFailed):
        DataCiteClient(url, DOI_PREFIX, "OTHER.REPO", "pw2").mint(None, LANDING, share(0))
    with pytest.raises(PIDNotFound):
        DataCiteClient(url, DOI_PREFIX, "EXAMPLE.DATA", "pw").resolve(f"{DOI_PREFIX}/unknown")


def test_datacite_double_state_rules(datacite_server) -> None:  # noqa: ANN001
    url, auth = datacite_server[0], ("EXAMPLE.DATA", "pw")
    headers = {"Content-Type": "application/vnd.api+json"}

    def send(method: str, path: str, attributes: dict | None = None) -> requests.Response:
        body = None if attributes is None else {"data": {"type": "dois", "attributes": attributes}}
        return requests.request(method, url + path, json=body, auth=auth, headers=headers, timeout=10)

    draft = send("POST", "/dois", {"prefix": DOI_PREFIX})
    assert draft.status_code == 201 and draft.json()["data"]["attributes"]["state"] == "draft"
    doi = draft.json()["data"]["id"]
    assert requests.get(f"{url}/dois/{doi}", timeout=10).status_code == 404  # drafts are private
    refused = send("PUT", f"/dois/{doi}", {"event": "publish"})
    assert refused.status_code == 422
    assert {e["source"] for e in refused.json()["errors"]} >= {"url", "creators", "titles", "publisher"}
    assert send("PUT", f"/dois/{doi}", {"event": "hide"}).status_code == 422
    full = DataCiteClient(url, DOI_PREFIX, *auth)
    full.update(doi, LANDING, share(0))
    assert (
        send("PUT", f"/dois/{doi}", {"event": "register"}).json()["data"]["attributes"]["state"]
        == "registered"
    )
    assert send("DELETE", f"/dois/{doi}").status_code == 405
    assert (
        send("PUT", f"/dois/{doi}", {"event": "publish"}).json()["data"]["attributes"]["state"] == "findable"
    )
    assert send("PUT", f"/dois/{doi}", {"titles": []}).status_code == 422
    throwaway = send("POST", "/dois", {"doi": f"{DOI_PREFIX}/throwaway"}).json()["data"]["id"]
    assert send("DELETE", f"/dois/{throwaway}").status_code == 204


def test_local_pids_need_no_service() -> None:
    local = make_pid_client(
        "local", {"prefix": "local.example", "resolver_url": "https://data.example.org/pid/{pid}"}
    )
    pid = local.mint(None, LANDING, share(2))
    assert pid.startswith("local.example/") and len(pid) == len("local.example/") + 12
    assert local.mint("mine", LANDING, share(2)) == "local.example/mine"
    assert local.resolve(pid).url == f"https://data.example.org/pid/{pid}"
    local.update(pid, LANDING, share(2))
    local.withdraw(pid)
    with pytest.raises(PIDNotFound):
        local.withdraw("elsewhere/abc")

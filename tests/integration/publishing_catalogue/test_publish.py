"""Publishing shares through the local, Handle and DataCite services; landing pages over REST."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from datamgmt.core import did, did_content, metadata, pid
from datamgmt.core.db.models import Share
from datamgmt.core.oai_repository import CatalogueRepository
from datamgmt.exceptions import Duplicate, InputValidationError, ShareNotFound, UnsupportedOperation
from datamgmt.pid.handle import content_checksum
from datamgmt.publishing import datacite
from tests.integration.publishing_catalogue.conftest import BASE, DOI_PREFIX, HANDLE_PREFIX, META, add_dataset
from tests.schemas.validation import validate_payload

pytestmark = pytest.mark.integration


def test_local_publish_resolve_unpublish_and_republish(catalogue: Session) -> None:
    share = pid.publish(catalogue, "data", "ds1", "root", BASE)
    assert share["pid"].startswith("21.T99999/") and share["pid_service"] == "local"
    assert share["landing_url"] == f"{BASE}/pid/{share['pid']}"
    with pytest.raises(Duplicate):
        pid.publish(catalogue, "data", "ds1", "root", BASE)
    page = pid.resolve(catalogue, share["pid"].upper())
    assert page["title"] == "Calibration run 7 <raw> & more"
    assert page["creators"] == ["Doe, Jane", "Roe, Richard"]
    assert [f["name"] for f in page["files"]] == ["ds1.f0", "ds1.f1"]
    assert page["files"][0]["replicas"] == [{"rse": "SITE-A", "state": "AVAILABLE"}]
    assert (page["files_total"], page["bytes_total"], page["withdrawn"]) == (2, 201, False)

    gone = pid.unpublish(catalogue, "data", "ds1", BASE)
    assert gone["state"] == "WITHDRAWN" and gone["datestamp"] > share["datestamp"]
    tomb = pid.resolve(catalogue, share["pid"])
    assert tomb["withdrawn"] and tomb["files"] == [] and tomb["title"].startswith("Calibration")
    with pytest.raises(ShareNotFound):
        pid.unpublish(catalogue, "data", "ds1", BASE)
    with pytest.raises(UnsupportedOperation):
        pid.publish(catalogue, "data", "ds1", "root", BASE, pid_service="hdl")
    again = pid.publish(catalogue, "data", "ds1", "root", BASE)
    assert (again["pid"], again["state"]) == (share["pid"], "PUBLISHED")


def test_only_collections_are_published(catalogue: Session) -> None:
    with pytest.raises(UnsupportedOperation):
        pid.publish(catalogue, "data", "ds1.f0", "root", BASE)
    metadata.set_metadata_bulk(catalogue, "data", "box", META)
    container = pid.publish(catalogue, "data", "box", "root", BASE)
    assert pid.resolve(catalogue, container["pid"])["files_total"] == 3


def test_handle_publish_update_and_withdraw(catalogue: Session, handle_server) -> None:  # noqa: ANN001
    store = handle_server[1]
    share = pid.publish(catalogue, "data", "ds1", "root", BASE, pid_service="hdl")
    catalogue.commit()
    assert share["pid"].startswith(HANDLE_PREFIX + "/")
    values = {v["type"]: v["data"]["value"] for v in store.get(share["pid"])["values"]}
    assert values["URL"] == f"{BASE}/pid/{share['pid']}"
    record = pid.share_records(catalogue, catalogue.scalars(select(Share)).all())[0]
    assert values["CHECKSUM"] == content_checksum(record) and len(record.files) == 2

    metadata.set_metadata(catalogue, "data", "ds1", "title", "Renamed")
    assert catalogue.scalars(select(Share)).one().datestamp == share["datestamp"]  # frozen until updated
    pid.update_share(catalogue, "data", "ds1", BASE)
    assert catalogue.scalars(select(Share)).one().datestamp > share["datestamp"]
    pid.unpublish(catalogue, "data", "ds1", BASE)
    values = {v["type"]: v["data"]["value"] for v in store.get(share["pid"])["values"]}
    assert values["STATUS"] == "withdrawn"


def test_datacite_publish_update_and_withdraw(catalogue: Session, datacite_server) -> None:  # noqa: ANN001
    store = datacite_server[1]
    share = pid.publish(catalogue, "data", "ds2", "root", BASE, pid_service="dc")
    doi = share["pid"]
    assert doi.startswith(DOI_PREFIX + "/") and store.dois[doi].state == "findable"
    attributes = store.dois[doi].attributes
    assert attributes["url"] == f"{BASE}/pid/{doi}"
    assert attributes["titles"] == [{"title": "Calibration run 7 <raw> & more"}]
    assert [c["name"] for c in attributes["creators"]] == ["Doe, Jane", "Roe, Richard"]
    assert attributes["publisher"] == "Example Lab" and attributes["publicationYear"] == 2024
    metadata.set_metadata(catalogue, "data", "ds2", "title", "Second title")
    pid.update_share(catalogue, "data", "ds2", BASE)
    assert store.dois[doi].attributes["titles"] == [{"title": "Second title"}]
    pid.unpublish(catalogue, "data", "ds2", BASE)
    assert store.dois[doi].state == "registered"
    assert pid.resolve(catalogue, doi)["pid_type"] == "doi"


def test_pid_service_admin_never_returns_secrets(catalogue: Session) -> None:
    services = {s["name"]: s for s in pid.list_pid_services(catalogue)}
    assert set(services) == {"local", "hdl", "dc"}
    assert all("secret" not in s for s in services.values()) and services["hdl"]["has_secret"]
    assert services["local"]["is_default"]
    with pytest.raises(InputValidationError):
        pid.add_pid_service(catalogue, "bad name", "local", "x")
    with pytest.raises(InputValidationError):
        pid.add_pid_service(catalogue, "remote", "handle", "21.T1")
    with pytest.raises(Duplicate):
        pid.add_pid_service(catalogue, "hdl", "local", "x")
    pid.publish(catalogue, "data", "ds1", "root", BASE, pid_service="hdl")
    with pytest.raises(UnsupportedOperation):
        pid.delete_pid_service(catalogue, "hdl")
    pid.delete_pid_service(catalogue, "dc")


def test_landing_page_html_json_and_tombstone(catalogue: Session, api) -> None:  # noqa: ANN001
    client = api.test_client()
    created = client.post("/dids/data/ds1/publish", json={})
    assert created.status_code == 201, created.data
    the_pid = created.get_json()["pid"]
    assert client.post("/dids/data/ds1/publish").status_code == 409
    html = client.get(f"/pid/{the_pid}")
    assert html.status_code == 200 and html.mimetype == "text/html"
    assert b"Calibration run 7 &lt;raw&gt; &amp; more" in html.data and b"ds1.f1" in html.data
    as_json = client.get(f"/pid/{the_pid}", headers={"Accept": "application/json"})
    assert as_json.get_json()["creators"] == ["Doe, Jane", "Roe, Richard"]
    assert client.get("/dids/data/ds1/publish").get_json()["state"] == "PUBLISHED"
    assert client.delete("/dids/data/ds1/publish").status_code == 200
    tomb = client.get(f"/pid/{the_pid}")
    assert tomb.status_code == 410 and b"withdrawn" in tomb.data and b"ds1.f1" not in tomb.data
    assert client.get("/pid/21.T99999/unknown").status_code == 404


def test_pidservices_over_rest(catalogue: Session, api) -> None:  # noqa: ANN001
    client = api.test_client()
    body = {
        "name": "dc2",
        "type": "datacite",
        "prefix": "10.9999",
        "endpoint": "https://x",
        "username": "u",
        "secret": "hidden-value",
    }
    created = client.post("/pidservices/", json=body)
    assert created.status_code == 201 and "hidden-value" not in created.get_data(as_text=True)
    listed = client.get("/pidservices/")
    assert {s["name"] for s in listed.get_json()} == {"local", "hdl", "dc", "dc2"}
    assert "hidden-value" not in listed.get_data(as_text=True)
    assert client.delete("/pidservices/dc2").status_code == 200
    assert client.get("/pidservices/dc2").status_code == 404


def test_failed_commit_withdraws_the_fresh_pid(catalogue: Session, api, handle_server, monkeypatch) -> None:  # noqa: ANN001
    real_commit = Session.commit
    calls = {"n": 0}

    def failing_commit(self: Session) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the database went away")
        real_commit(self)

    before = set(handle_server[1].records)
    monkeypatch.setattr(Session, "commit", failing_commit)
    answer = api.test_client().post("/dids/data/ds1/publish", json={"pid_service": "hdl"})
    assert answer.status_code == 500
    minted = [record for handle, record in handle_server[1].records.items() if handle not in before]
    assert len(minted) == 1 and any(v["type"] == "STATUS" for v in minted[0]["values"])
    monkeypatch.setattr(Session, "commit", real_commit)
    catalogue.rollback()
    assert catalogue.scalars(select(Share)).all() == []


def test_publication_missing_datacite_properties_is_refused(catalogue: Session, datacite_server) -> None:  # noqa: ANN001
    add_dataset(catalogue, "bare", files=1, meta={"title": "Only a title", "publication_year": "20x4"})
    registered = set(datacite_server[1].dois)
    with pytest.raises(InputValidationError) as refused:
        pid.publish(catalogue, "data", "bare", "root", BASE, pid_service="dc")
    message = refused.value.message
    assert "needs metadata creator, publisher" in message and "4-digit 'publication_year'" in message
    did.add_collection(catalogue, "data", "empty", "DATASET", "root")
    metadata.set_metadata_bulk(catalogue, "data", "empty", META)
    with pytest.raises(InputValidationError, match=r"files \(the collection holds none\)"):
        pid.publish(catalogue, "data", "empty", "root", BASE)
    assert catalogue.scalar(select(func.count()).select_from(Share)) == 0
    assert set(datacite_server[1].dois) == registered


def test_published_content_is_frozen_until_a_new_version(
    catalogue: Session, db: str, datacite_server
) -> None:  # noqa: ANN001
    repository = CatalogueRepository(db)
    share = pid.publish(catalogue, "data", "ds1", "root", BASE, pid_service="dc")
    catalogue.commit()
    published = repository.get_record("data", "ds1")
    registered = dict(datacite_server[1].dois[share["pid"].lower()].attributes)

    did_content.detach(catalogue, "data", "ds1", [{"scope": "data", "name": "ds1.f1"}])
    metadata.set_metadata(catalogue, "data", "ds1", "title", "Changed after publishing")
    catalogue.commit()
    page = pid.resolve(catalogue, share["pid"])
    assert [item["name"] for item in page["files"]] == ["ds1.f0", "ds1.f1"] and page["files_total"] == 2
    assert page["files"][1]["replicas"] == [{"rse": "SITE-A", "state": "AVAILABLE"}]
    assert page["title"] == META["title"]
    catalogue.rollback()
    assert repository.get_record("data", "ds1") == published
    assert datacite_server[1].dois[share["pid"].lower()].attributes == registered

    pid.update_share(catalogue, "data", "ds1", BASE)
    catalogue.commit()
    catalogue.rollback()
    version = repository.get_record("data", "ds1")
    assert version is not None and version.datestamp > published.datestamp
    assert [entry.name for entry in version.files] == ["data:ds1.f0"]
    page = pid.resolve(catalogue, share["pid"])
    assert page["title"] == "Changed after publishing" and [item["name"] for item in page["files"]] == [
        "ds1.f0"
    ]
    attributes = datacite_server[1].dois[share["pid"].lower()].attributes
    assert (
        attributes["titles"] == [{"title": "Changed after publishing"}]
        and attributes["sizes"][1] == "1 files"
    )


def test_datacite_registers_every_author_with_affiliation_and_orcid(
    catalogue: Session, datacite_server
) -> None:  # noqa: ANN001
    creators = [
        {"name": "Doe, Jane", "affiliation": "Example Lab", "orcid": "0000-0002-1825-0097"},
        {"name": "Roe, Richard"},
    ]
    related = [{"identifier": "https://example.org/paper", "type": "URL", "relation": "IsDocumentedBy"}]
    add_dataset(
        catalogue,
        "authors",
        files=1,
        meta={
            **META,
            "creator": creators,
            "related_identifiers": related,
            "subject": ["physics", "detectors"],
        },
    )
    share = pid.publish(catalogue, "data", "authors", "root", BASE, pid_service="dc")
    attributes = datacite_server[1].dois[share["pid"].lower()].attributes
    assert attributes["creators"] == [
        {
            "name": "Doe, Jane",
            "affiliation": [{"name": "Example Lab"}],
            "nameIdentifiers": [
                {
                    "nameIdentifier": "https://orcid.org/0000-0002-1825-0097",
                    "nameIdentifierScheme": "ORCID",
                    "schemeUri": "https://orcid.org",
                }
            ],
        },
        {"name": "Roe, Richard"},
    ]
    assert attributes["subjects"] == [{"subject": "physics"}, {"subject": "detectors"}]
    assert attributes["relatedIdentifiers"] == [
        {
            "relatedIdentifier": "https://example.org/paper",
            "relatedIdentifierType": "URL",
            "relationType": "IsDocumentedBy",
        }
    ]
    record = pid.stored_record(
        catalogue.scalars(select(Share).where(Share.name == "authors")).one(), pid.service_kinds(catalogue)
    )
    validate_payload(datacite.resource(record))

    metadata.set_metadata(
        catalogue,
        "data",
        "authors",
        "related_identifiers",
        [{"identifier": "x", "type": "Nope", "relation": "Cites"}],
    )
    with pytest.raises(InputValidationError, match="related identifier 'x'"):
        pid.update_share(catalogue, "data", "authors", BASE)

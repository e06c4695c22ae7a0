"""``/credentials/signurl`` against a real S3 endpoint (moto, started by tests/servers): the signed
URLs read, write and delete the object with plain HTTP and no keys; Rucio's parameter errors,
the ``get_signed_url`` permission, refused services and URLs off the RSE's protocols; and the
stock client's ``CredentialClient.get_signed_url``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from datamgmt.config import reset_config
from datamgmt.core.account import add_account_attribute
from tests.integration.api.conftest import RucioCLI
from tests.servers.endpoints import BUCKET, running_endpoints
from tests.unit.api.conftest import app, client, make_account, root_headers

__all__ = ["app", "client", "root_headers"]  # the Flask fixtures of tests/unit/api

pytestmark = pytest.mark.integration
RSE = "S3SIGN"
PREFIX = f"/{BUCKET}/signed"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with running_endpoints("signurl", "s3") as urls:
        yield urls["S3_ENDPOINT_URL"]


@pytest.fixture
def s3_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The server's S3 keys (moto's), as ``[storage]`` gives them."""
    monkeypatch.setenv("DATAMGMT_STORAGE_S3_ACCESS_KEY", "testing")
    monkeypatch.setenv("DATAMGMT_STORAGE_S3_SECRET_KEY", "testing")
    reset_config()
    yield
    monkeypatch.undo()
    reset_config()


@pytest.fixture
def bucket(s3_endpoint: str, s3_keys: None) -> object:
    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def _s3_rse(client: FlaskClient, headers: dict[str, str], endpoint: str) -> str:
    parts = urlsplit(endpoint)
    assert client.post(f"/rses/{RSE}", json={}, headers=headers).status_code == 201
    protocol = {
        "scheme": "s3",
        "hostname": parts.hostname,
        "port": parts.port,
        "prefix": PREFIX,
        "impl": "rucio.rse.protocols.gfal.NoRename",
        "domains": {"wan": {"read": 1, "write": 1, "delete": 1}},
    }
    assert client.post(f"/rses/{RSE}/protocols/s3", json=protocol, headers=headers).status_code == 201
    return f"s3://{parts.hostname}:{parts.port}{PREFIX}"


def _sign(client: FlaskClient, headers: dict[str, str], **query: object):
    return client.get("/credentials/signurl", query_string=query, headers=headers)


def test_signed_urls_read_write_and_delete_the_object(
    client: FlaskClient, root_headers: dict[str, str], s3_endpoint: str, bucket
) -> None:
    base = _s3_rse(client, root_headers, s3_endpoint)
    key = f"signed/{uuid.uuid4().hex}.dat"
    bucket.put_object(Bucket=BUCKET, Key=key, Body=b"signed bytes")
    url = f"{base}/{key.removeprefix('signed/')}"

    read = _sign(client, root_headers, rse=RSE, svc="s3", op="read", url=url, lifetime=120)
    assert read.status_code == 200, read.headers
    assert read.content_type == "application/octet-stream"
    signed = read.get_data(as_text=True)
    query = parse_qs(urlsplit(signed).query)
    assert signed.startswith(f"{s3_endpoint}/{BUCKET}/{key}?")
    assert (
        query["X-Amz-Expires"] == ["120"]
        and query["X-Amz-Signature"]
        and "testing" not in query["X-Amz-Signature"][0]
    )
    assert requests.get(signed, timeout=30).content == b"signed bytes"
    # moto checks that a request is signed (not the signature's value): unsigned, it is refused.
    assert requests.get(f"{s3_endpoint}/{BUCKET}/{key}", timeout=30).status_code == 403

    write = _sign(client, root_headers, rse=RSE, svc="s3", op="write", url=url).get_data(as_text=True)
    assert parse_qs(urlsplit(write).query)["X-Amz-Expires"] == ["600"], "Rucio's default lifetime"
    assert requests.put(write, data=b"replaced", timeout=30).status_code == 200
    assert bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"replaced"

    delete = _sign(client, root_headers, rse=RSE, svc="s3", op="delete", url=url).get_data(as_text=True)
    assert requests.delete(delete, timeout=30).status_code == 204
    assert bucket.list_objects_v2(Bucket=BUCKET, Prefix=key).get("KeyCount") == 0


def test_https_form_of_the_url_is_signed_too(
    client: FlaskClient, root_headers: dict[str, str], s3_endpoint: str, bucket
) -> None:
    """HTTP clients name the object by its http(s) URL, which Rucio signs alike."""
    _s3_rse(client, root_headers, s3_endpoint)
    bucket.put_object(Bucket=BUCKET, Key="signed/http.dat", Body=b"via http")
    response = _sign(client, root_headers, rse=RSE, svc="s3", url=f"{s3_endpoint}{PREFIX}/http.dat")
    assert requests.get(response.get_data(as_text=True), timeout=30).content == b"via http"


@pytest.mark.parametrize(
    ("query", "status", "error"),
    [
        ({"svc": "s3", "url": "s3://h/b/k"}, 400, "ValueError"),  # no rse
        ({"rse": RSE, "svc": "s3"}, 400, "ValueError"),  # no url
        ({"rse": RSE, "svc": "azure", "url": "s3://h/b/k"}, 400, "ValueError"),
        ({"rse": RSE, "svc": "s3", "op": "list", "url": "s3://h/b/k"}, 400, "ValueError"),
        ({"rse": RSE, "svc": "s3", "lifetime": "soon", "url": "s3://h/b/k"}, 400, "InputValidationError"),
        ({"rse": RSE, "svc": "s3", "lifetime": 0, "url": "s3://h/b/k"}, 400, "ValueError"),
        ({"rse": RSE, "url": "s3://h/b/k"}, 409, "UnsupportedOperation"),  # Rucio's default service, gcs
        ({"rse": RSE, "svc": "swift", "url": "s3://h/b/k"}, 409, "UnsupportedOperation"),
        ({"rse": RSE, "svc": "s3", "url": "s3://elsewhere:9000/other-bucket/key"}, 400, "InvalidPath"),
        ({"rse": RSE, "svc": "s3", "url": "ftp://h/b/k"}, 400, "InvalidPath"),
        ({"rse": "NOSUCHRSE", "svc": "s3", "url": "s3://h/b/k"}, 404, "RSENotFound"),
    ],
)
def test_rucio_errors(
    client: FlaskClient,
    root_headers: dict[str, str],
    s3_endpoint: str,
    s3_keys: None,
    query: dict[str, object],
    status: int,
    error: str,
) -> None:
    _s3_rse(client, root_headers, s3_endpoint)
    response = _sign(client, root_headers, **query)
    assert (response.status_code, response.headers["ExceptionClass"]) == (status, error), response.get_data(
        as_text=True
    )


def test_an_rse_without_s3_protocol_signs_nothing(client: FlaskClient, root_headers: dict[str, str]) -> None:
    assert client.post("/rses/POSIXONLY", json={}, headers=root_headers).status_code == 201
    response = _sign(client, root_headers, rse="POSIXONLY", svc="s3", url="s3://h/b/k")
    assert (response.status_code, response.headers["ExceptionClass"]) == (409, "UnsupportedOperation")


def test_permission_is_rucio_sign_url_attribute(
    client: FlaskClient, root_headers: dict[str, str], session: Session, s3_endpoint: str, s3_keys: None
) -> None:
    base = _s3_rse(client, root_headers, s3_endpoint)
    jdoe = make_account(session, "jdoe")
    refused = _sign(client, jdoe, rse=RSE, svc="s3", url=f"{base}/x.dat")
    assert (refused.status_code, refused.headers["ExceptionClass"]) == (401, "AccessDenied")
    add_account_attribute(session, "jdoe", "sign-url", True)
    session.commit()
    assert _sign(client, jdoe, rse=RSE, svc="s3", url=f"{base}/x.dat").status_code == 200
    assert client.get("/credentials/signurl", query_string={"rse": RSE}).status_code == 401


def test_accept_header_is_checked(client: FlaskClient, root_headers: dict[str, str]) -> None:
    response = _sign(
        client, {**root_headers, "Accept": "application/json"}, rse=RSE, svc="s3", url="s3://h/b/k"
    )
    assert (response.status_code, response.headers["ExceptionClass"]) == (
        406,
        "UnsupportedRequestedContentType",
    )


def test_stock_client_gets_a_working_signed_url(rucio: RucioCLI, s3_endpoint: str, bucket) -> None:
    """``CredentialClient.get_signed_url`` of rucio-clients 41 (``/credentials/signurl``, svc/op/lifetime)."""
    parts = urlsplit(s3_endpoint)
    rucio.run("python", "-c", f"from rucio.client.rseclient import RSEClient; RSEClient().add_rse({RSE!r})")
    rucio.run(
        "python",
        "-c",
        (
            "from rucio.client.rseclient import RSEClient\n"
            f"RSEClient().add_protocol({RSE!r}, {{'scheme': 's3', 'hostname': {parts.hostname!r}, 'port': {parts.port},"
            f" 'prefix': {PREFIX!r}, 'impl': 'rucio.rse.protocols.gfal.NoRename',"
            " 'domains': {'wan': {'read': 1, 'write': 1, 'delete': 1}}})"
        ),
    )
    bucket.put_object(Bucket=BUCKET, Key="signed/stock.dat", Body=b"stock client")
    url = f"s3://{parts.hostname}:{parts.port}{PREFIX}/stock.dat"
    printed = rucio.run(
        "python",
        "-c",
        (
            "from rucio.client.credentialclient import CredentialClient\n"
            f"print(CredentialClient().get_signed_url({RSE!r}, 's3', 'read', {url!r}, 60))"
        ),
    ).stdout.strip()
    assert requests.get(printed, timeout=30).content == b"stock client"

"""Client configuration, the filter grammar, sizes and error mapping: no server needed."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from datamgmt.cli.output import human_size, parse_size
from datamgmt.client.config import ClientConfig
from datamgmt.client.filters import parse_filter
from datamgmt.client.transport import error_from_response
from datamgmt.exceptions import (
    ConfigurationError,
    DataIdentifierNotFound,
    DatamgmtError,
    DIDFilterSyntaxError,
    error_classes,
)


def test_config_file_then_environment(tmp_path: Path) -> None:
    path = tmp_path / "client.cfg"
    path.write_text("[client]\nurl = https://dm.example/\naccount = alice\nusername = alice\npassword = pw\n")
    path.chmod(0o600)
    config = ClientConfig.load(
        path, environ={"DATAMGMT_CLIENT_ACCOUNT": "bob", "DATAMGMT_CLIENT_CA_CERT": "/ca"}
    )
    assert (config.url, config.account, config.username, config.ca_cert) == (
        "https://dm.example",
        "bob",
        "alice",
        "/ca",
    )
    assert config.auth_type == "userpass" and config.token_cache.parent == Path.home() / ".datamgmt"
    assert config.token_cache.name.startswith("token_bob_")


def test_the_vo_goes_with_every_request_and_keeps_its_own_token(tmp_path: Path) -> None:
    from datamgmt.client.transport import Transport

    environ = {"DATAMGMT_CLIENT_URL": "http://dm.example", "DATAMGMT_CLIENT_ACCOUNT": "root"}
    default = ClientConfig.load(tmp_path / "none.cfg", environ=environ)
    theirs = ClientConfig.load(tmp_path / "none.cfg", environ={**environ, "DATAMGMT_CLIENT_VO": "abc"})
    assert Transport(default).session.headers["X-Rucio-VO"] == "def"
    assert Transport(theirs).session.headers["X-Rucio-VO"] == "abc"
    assert theirs.token_cache != default.token_cache and theirs.token_cache.name.endswith("_abc")


def test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="url"):
        ClientConfig.load(tmp_path / "none.cfg", environ={})
    with pytest.raises(ConfigurationError, match="token_file"):
        ClientConfig.load(
            tmp_path / "none.cfg",
            environ={
                "DATAMGMT_CLIENT_URL": "http://x",
                "DATAMGMT_CLIENT_ACCOUNT": "a",
                "DATAMGMT_CLIENT_AUTH_TYPE": "oidc",
            },
        )
    (tmp_path / "bad.cfg").write_text("[client]\nurl = http://x\naccount = a\ncolour = blue\n")
    with pytest.raises(ConfigurationError, match="colour"):
        ClientConfig.load(tmp_path / "bad.cfg", environ={})


def test_filter_grammar_matches_rucio() -> None:
    assert parse_filter("length>5,project=e2e;run_number=3") == [
        {"length.gt": "5", "project": "e2e", "name": "*"},
        {"run_number": "3", "name": "*"},
    ]
    assert parse_filter("a>=1,b<=2,c!=3,d==4,e<5,type=DATASET", "ds_*") == [
        {"a.gte": "1", "b.lte": "2", "c.ne": "3", "d": "4", "e.lt": "5", "type": "dataset", "name": "ds_*"}
    ]
    for wrong in ("novalue=", "type>1", "type=thing", "a=1,a=2", "=3"):
        with pytest.raises(DIDFilterSyntaxError):
            parse_filter(wrong)


def test_sizes() -> None:
    assert [human_size(n) for n in (0, 999, 1000, 1_500_000, 10**10, -1)] == [
        "0 B",
        "999 B",
        "1.0 kB",
        "1.5 MB",
        "10.0 GB",
        "unlimited",
    ]
    assert [parse_size(text) for text in ("512", "10GB", "1.5 TiB", "2k", "infinity")] == [
        512,
        10**10,
        int(1.5 * 1024**4),
        2000,
        -1,
    ]


def response(status: int, body: bytes, headers: dict[str, str]) -> requests.Response:
    answer = requests.Response()
    answer.status_code, answer._content, answer.reason = status, body, "X"
    answer.headers.update(headers)
    answer.request = requests.Request("GET", "http://x/dids/s/n").prepare()
    return answer


def test_errors_come_back_as_our_classes() -> None:
    error = error_from_response(
        response(
            404,
            b'{"ExceptionClass": "DataIdentifierNotFound", '
            b'"ExceptionMessage": "Data identifier \'s:n\' not found"}',
            {},
        )
    )
    assert isinstance(error, DataIdentifierNotFound) and error.message == "Data identifier 's:n' not found"
    from_headers = error_from_response(
        response(409, b"", {"ExceptionClass": "Duplicate", "ExceptionMessage": "m"})
    )
    assert from_headers.error_class == "Duplicate" and from_headers.message == "m"
    unknown = error_from_response(
        response(500, b'{"ExceptionClass": "RucioException", "ExceptionMessage": "boom"}', {})
    )
    assert unknown.error_class == "RucioException" and unknown.message == "boom"
    html = error_from_response(response(404, b"<html>", {}))
    assert html.error_class == "HTTPError" and "GET /dids/s/n answered 404" in html.message


def test_an_error_keeps_the_status_it_was_answered_with() -> None:
    # The database-drop fault run counted a retriable 503 as a 500: the client took the status
    # from the class named DatabaseException instead of from the answer.
    unavailable = error_from_response(
        response(503, b'{"ExceptionClass": "DatabaseException", "ExceptionMessage": "retry"}', {})
    )
    assert unavailable.error_class == "DatabaseException" and unavailable.status == 503
    assert error_from_response(response(404, b"<html>", {})).status == 404


def test_a_wire_name_several_classes_send_maps_to_the_class_of_that_name() -> None:
    """AccountSuspended sends CannotAuthenticate, StorageError ServiceUnavailable, and so on:
    the client re-raises the class of that very name, whatever order the module defines them in
    (ChecksumMismatch used to shadow FileConsistencyMismatch only because of that order)."""
    senders: dict[str, set[str]] = {}
    pending: list[type[DatamgmtError]] = [DatamgmtError]
    while pending:
        cls = pending.pop()
        senders.setdefault(cls.rucio_name or cls.__name__, set()).add(cls.__name__)
        pending.extend(cls.__subclasses__())
    shared = {name for name, classes in senders.items() if len(classes) > 1}
    assert {"CannotAuthenticate", "ServiceUnavailable", "FileConsistencyMismatch"} <= shared
    mapped = error_classes()
    for name in shared:
        assert mapped[name].__name__ == name
    for name, classes in senders.items():
        assert len(classes) == 1 or name in classes, f"{name} is sent by {classes} but none bears it"


def test_shell_completion_is_clicks(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    launcher = Path(__file__).resolve().parents[3] / "bin" / "datamgmt"
    env = {
        **os.environ,
        "COMP_WORDS": "datamgmt ru",
        "COMP_CWORD": "1",
        "_DATAMGMT_COMPLETE": "bash_complete",
    }
    done = subprocess.run(
        [sys.executable, str(launcher)], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["plain,rule"]

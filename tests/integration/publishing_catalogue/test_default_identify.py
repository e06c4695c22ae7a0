"""OAI-PMH Identify with the configuration as shipped (defaults only) is valid against OAI-PMH.xsd."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from datamgmt.api.oaipmh import make_oaipmh_blueprint
from datamgmt.config import Config, get_config, reset_config
from datamgmt.core.oai_repository import CatalogueRepository
from tests.schemas.validation import validate

pytestmark = pytest.mark.integration


@pytest.fixture
def shipped_config(tmp_path: Path) -> Iterator[Config]:
    """The defaults of datamgmt.config, with no file and no other override than the base URL that
    ``datamgmt-server`` sets to the address it serves (published URLs never come from requests)."""
    previous = get_config()
    config = Config(path=tmp_path / "none.cfg", environ={"DATAMGMT_API_BASE_URL": "http://127.0.0.1:8080"})
    reset_config(config)
    try:
        yield config
    finally:
        reset_config(previous)


def test_identify_of_the_default_configuration_validates(db: str, shipped_config: Config) -> None:
    app = Flask(__name__)
    app.register_blueprint(make_oaipmh_blueprint(CatalogueRepository.from_config(db), secret=b"s" * 32))
    response = app.test_client().get("/oai_pmh?verb=Identify")
    assert response.status_code == 200
    root = validate(response.data)
    emails = root.findall(".//{http://www.openarchives.org/OAI/2.0/}adminEmail")
    assert [email.text for email in emails] == [shipped_config.get("oaipmh", "admin_email")]

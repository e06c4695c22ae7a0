"""Configuration: defaults < file < DATAMGMT_<SECTION>_<OPTION> environment."""

from __future__ import annotations

import pytest

from datamgmt.config import Config
from datamgmt.exceptions import ConfigurationError


def test_file_then_environment_override(tmp_path):
    path = tmp_path / "datamgmt.cfg"
    path.write_text("[database]\nurl = sqlite:///from-file.db\n[oaipmh]\npage_size = 50\n")
    config = Config(path, environ={"DATAMGMT_OAIPMH_PAGE_SIZE": "7"})
    assert config.get("database", "url") == "sqlite:///from-file.db"
    assert config.get_int("oaipmh", "page_size") == 7
    assert (
        Config(path, environ={"DATAMGMT_DATABASE_URL": "postgresql://x"}).get("database", "url")
        == "postgresql://x"
    )


def test_defaults_without_a_file(tmp_path):
    config = Config(tmp_path / "missing.cfg", environ={})
    assert config.get("conveyor", "transfertool") == "local"
    assert config.get_int("oaipmh", "page_size") == 100
    assert config.get_bool("reaper", "greedy") is False


def test_environment_adds_unknown_options_to_sections(tmp_path):
    config = Config(tmp_path / "missing.cfg", environ={"DATAMGMT_PID_EXTRA_OPTION": "x"})
    assert config.section("pid")["extra_option"] == "x"


def test_bad_values_are_clear_errors(tmp_path):
    config = Config(
        tmp_path / "missing.cfg",
        environ={"DATAMGMT_OAIPMH_PAGE_SIZE": "lots", "DATAMGMT_REAPER_GREEDY": "maybe"},
    )
    with pytest.raises(ConfigurationError, match="page_size"):
        config.get_int("oaipmh", "page_size")
    with pytest.raises(ConfigurationError, match="greedy"):
        config.get_bool("reaper", "greedy")
    with pytest.raises(ConfigurationError, match="missing"):
        config.get("nosuch", "option")


def test_unparsable_file(tmp_path):
    path = tmp_path / "broken.cfg"
    path.write_text("not an ini file")
    with pytest.raises(ConfigurationError):
        Config(path, environ={})

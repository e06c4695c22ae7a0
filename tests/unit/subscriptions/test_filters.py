"""Filters and replication rules of subscriptions: validation and matching, no database."""

from __future__ import annotations

import pytest

from datamgmt.core.db.constants import DIDType
from datamgmt.core.subscription import Candidate, check_replication_rules, parse_filter
from datamgmt.exceptions import (
    InputValidationError,
    InvalidObject,
    InvalidRSEExpression,
    UnsupportedOperation,
)


def did(name="data18.AOD.001", scope="data18", did_type=DIDType.DATASET, account="prod", **meta):
    return Candidate(scope, name, did_type, account, meta)


def test_empty_filter_matches_every_collection_but_no_file():
    flt = parse_filter({})
    assert flt.matches(did()) and flt.matches(did(did_type=DIDType.CONTAINER))
    assert not flt.matches(did(did_type=DIDType.FILE))


def test_scope_list_and_patterns():
    flt = parse_filter(
        {"scope": ["data1[78]", "mc16"], "pattern": r".*\.AOD\.", "excluded_pattern": r".*_tmp$"}
    )
    assert flt.matches(did())
    assert flt.matches(did(scope="mc16"))
    assert not flt.matches(did(scope="user"))
    assert not flt.matches(did(name="data18.ESD.001"))
    assert not flt.matches(did(name="data18.AOD.001_tmp"))


def test_a_single_scope_string_is_a_list_of_one():
    assert parse_filter({"scope": "data18"}).matches(did())
    assert not parse_filter({"scope": "mc16"}).matches(did())


def test_did_type_and_account():
    datasets = parse_filter({"did_type": ["dataset"], "account": ["prod", "group"]})
    assert datasets.matches(did())
    assert not datasets.matches(did(did_type=DIDType.CONTAINER))
    assert not datasets.matches(did(account="jdoe"))


def test_metadata_strings_are_regular_expressions_other_values_are_equal():
    flt = parse_filter({"datatype": ["AOD", "DAOD_.*"], "run": 358031, "calibrated": True})
    assert flt.matches(did(datatype="AOD", run=358031, calibrated=True))
    assert flt.matches(did(datatype="DAOD_PHYS", run=358031, calibrated=True))
    assert not flt.matches(did(datatype="ESD", run=358031, calibrated=True))
    assert not flt.matches(did(datatype="AOD", run=1, calibrated=True))
    assert not flt.matches(did(datatype="AOD", run=358031, calibrated=1))


def test_a_list_value_matches_by_its_elements():
    flt = parse_filter({"subjects": ["phys.*"], "runs": 7})
    assert flt.matches(did(subjects=["astro", "physics"], runs=[3, 7]))
    assert not flt.matches(did(subjects=["astro"], runs=[3, 7]))
    assert not flt.matches(did(subjects=["physics"], runs=[True, 3]))
    assert not flt.matches(did(subjects=[["physics"]], runs=7))  # only a list's own elements, not nested ones


def test_missing_metadata_key_does_not_match():
    assert not parse_filter({"project": "data18"}).matches(did())


def test_numbers_are_matched_as_text_by_a_string_value():
    assert parse_filter({"run": "3580.*"}).matches(did(run=358031))


@pytest.mark.parametrize(
    "bad",
    [
        [],
        "scope=x",
        {"pattern": "("},
        {"scope": [3]},
        {"scope": []},
        {"bytes": 3},
        {"did_type": ["FILE"]},
        {"bad key": "x"},
        {"datatype": {"nested": 1}},
        {"account": ["Not An Account"]},
    ],
)
def test_invalid_filters_are_refused(bad):
    with pytest.raises(InputValidationError):
        parse_filter(bad)


def test_rucio_keys_without_an_implementation_are_refused_not_ignored():
    with pytest.raises(UnsupportedOperation):
        parse_filter({"split_rule": True})


def test_replication_rules_are_checked_and_normalised():
    rules = check_replication_rules(
        [
            {
                "copies": 2,
                "rse_expression": "T1",
                "grouping": "none",
                "lifetime": None,
                "activity": "Data Brokering",
                "source_replica_expression": "T2",
            }
        ]
    )
    assert rules == [
        {
            "copies": 2,
            "rse_expression": "T1",
            "grouping": "NONE",
            "activity": "Data Brokering",
            "source_replica_expression": "T2",
        }
    ]


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"copies": 1},
        [{"copies": 0, "rse_expression": "T1"}],
        [{"copies": True, "rse_expression": "T1"}],
        [{"copies": 1}],
        [{"copies": 1, "rse_expression": ["T1"]}],
        [{"copies": 1, "rse_expression": "T1", "x": 1}],
        [{"copies": 1, "rse_expression": "T1", "lifetime": -1}],
        [{"copies": 1, "rse_expression": "T1", "grouping": "X"}],
        [{"copies": 1, "rse_expression": "T1", "weight": 3}],
        ["T1"],
    ],
)
def test_invalid_replication_rules_are_refused(bad):
    with pytest.raises(InputValidationError):
        check_replication_rules(bad)


def test_rse_expression_syntax_is_checked():
    with pytest.raises(InvalidRSEExpression):
        check_replication_rules([{"copies": 1, "rse_expression": "T1&(T2"}])


#: Patterns that make a backtracking engine take exponential time on a long run of "a" with a bad end.
CATASTROPHIC = [r"(a+)+$", r"(a|a)*$", r"(a|aa)+$", r"(a*)*b", r"(.*a){25}$", r"^(\w+\s?)*$"]
ADVERSARIAL = "a" * 100_000 + "!"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_catastrophic_patterns_are_matched_in_linear_time(pattern):
    # With a backtracking engine each of these runs for longer than the universe on this name;
    # the test's timeout turns that into a failure.  The results are the mathematically right ones.
    flt = parse_filter({"pattern": pattern})
    excluding = parse_filter({"excluded_pattern": pattern})
    meta = parse_filter({"datatype": pattern})
    assert not flt.matches(did(name=ADVERSARIAL))
    assert excluding.matches(did(name=ADVERSARIAL))
    assert not meta.matches(did(datatype=ADVERSARIAL))


def test_a_long_name_still_matches_when_it_should():
    assert parse_filter({"pattern": r"(a+)+$"}).matches(did(name="a" * 100_000))
    assert parse_filter({"pattern": r"(a|aa)+!"}).matches(did(name=ADVERSARIAL))


@pytest.mark.parametrize(
    "pattern", [r"(a)\1", r"(?=data)data", r"(?!mc)\w+", r"(?<=x)y", r"(?>a+)b", r"((a{100}){100}){100}"]
)
def test_patterns_the_linear_engine_cannot_serve_are_refused_clearly(pattern):
    for flt in (
        {"pattern": pattern},
        {"excluded_pattern": pattern},
        {"scope": [pattern]},
        {"datatype": pattern},
    ):
        with pytest.raises(InvalidObject, match="RE2 syntax"):
            parse_filter(flt)

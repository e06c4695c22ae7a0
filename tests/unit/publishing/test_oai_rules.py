"""Protocol rules independent of HTTP: arguments, dates, identifiers, tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from datamgmt.publishing.oai import (
    OAIError,
    make_identifier,
    parse_arguments,
    parse_date_range,
    parse_identifier,
)
from datamgmt.publishing.tokens import ResumptionState, TokenCodec


def _code(pairs: list[tuple[str, str]]) -> str:
    with pytest.raises(OAIError) as caught:
        parse_arguments(pairs)
    return caught.value.code


@pytest.mark.parametrize(
    "pairs",
    [
        [],
        [("verb", "")],
        [("verb", "identify")],
        [("verb", "Identify"), ("verb", "Identify")],
        [("set", "a")],
    ],
)
def test_bad_verbs(pairs: list[tuple[str, str]]) -> None:
    assert _code(pairs) == "badVerb"


@pytest.mark.parametrize(
    "pairs",
    [
        [("verb", "Identify"), ("set", "a")],
        [("verb", "ListRecords")],
        [("verb", "ListRecords"), ("metadataPrefix", "oai_dc"), ("metadataPrefix", "oai_dc")],
        [("verb", "ListRecords"), ("metadataPrefix", "oai_dc"), ("set", "")],
        [("verb", "ListRecords"), ("resumptionToken", "x"), ("metadataPrefix", "oai_dc")],
        [("verb", "ListSets"), ("resumptionToken", "x"), ("set", "a")],
        [("verb", "GetRecord"), ("identifier", "oai:x.org:a:b")],
        [("verb", "ListIdentifiers"), ("metadataPrefix", "oai_dc"), ("set", "a b")],
        [("verb", "ListRecords"), ("metadataPrefix", "oai_dc"), ("From", "2024-01-01")],
    ],
)
def test_bad_arguments(pairs: list[tuple[str, str]]) -> None:
    assert _code(pairs) == "badArgument"


def test_good_arguments_are_returned_as_sent() -> None:
    verb, args = parse_arguments(
        [("verb", "ListRecords"), ("metadataPrefix", "oai_dc"), ("from", "2024-01-01")]
    )
    assert (verb, args) == ("ListRecords", {"metadataPrefix": "oai_dc", "from": "2024-01-01"})
    assert parse_arguments([("verb", "ListSets"), ("resumptionToken", "t")]) == (
        "ListSets",
        {"resumptionToken": "t"},
    )


def test_dates_widen_until_to_the_end_of_its_granularity() -> None:
    day = parse_date_range("2024-05-01", "2024-05-02")
    assert day.from_ == datetime(2024, 5, 1, tzinfo=UTC)
    assert day.until == datetime(2024, 5, 2, 23, 59, 59, 999999, tzinfo=UTC)
    second = parse_date_range(None, "2024-05-01T12:00:00Z")
    assert second.from_ is None
    assert second.until == datetime(2024, 5, 1, 12, 0, 0, 999999, tzinfo=UTC)


@pytest.mark.parametrize(
    ("from_", "until"),
    [
        ("2024-05-01", "2024-05-02T00:00:00Z"),
        ("2024-05-02", "2024-05-01"),
        ("2024-05-01T12:00:00+01:00", None),
        ("2024-05-01T12:00:00.5Z", None),
        ("2024-02-30", None),
        ("2024-5-1", None),
        (None, "2024-05-01T12:00Z"),
    ],
)
def test_malformed_or_mixed_dates_are_bad_arguments(from_: str | None, until: str | None) -> None:
    with pytest.raises(OAIError) as caught:
        parse_date_range(from_, until)
    assert caught.value.code == "badArgument"


@pytest.mark.parametrize(
    ("scope", "name"), [("user.jdoe", "plain"), ("data18", "a:b/c d%<>#ü"), ("s", "x:y")]
)
def test_identifiers_round_trip_and_stay_oai_identifiers(scope: str, name: str) -> None:
    identifier = make_identifier("data.example.org", scope, name)
    assert " " not in identifier and "<" not in identifier and "#" not in identifier
    assert parse_identifier("data.example.org", identifier) == (scope, name)
    assert parse_identifier("other.example.org", identifier) is None
    assert parse_identifier("data.example.org", "oai:data.example.org:noname") is None


_NOW = datetime(2024, 5, 1, tzinfo=UTC)
_STATE = ResumptionState(
    "ListRecords",
    "oai_dc",
    _NOW,
    None,
    "scope",
    ("2024-05-01T00:00:00+00:00", "s1"),
    100,
    250,
    _NOW + timedelta(hours=1),
)


def test_tokens_round_trip() -> None:
    codec = TokenCodec(b"k" * 32)
    assert codec.decode(codec.encode(_STATE), "ListRecords", _NOW) == _STATE


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: ("A" if t[0] != "A" else "B") + t[1:],
        lambda t: t.split(".")[0],
        lambda t: "garbage",
    ],
)
def test_tampered_tokens_are_rejected(mangle) -> None:  # noqa: ANN001
    codec = TokenCodec(b"k" * 32)
    with pytest.raises(OAIError) as caught:
        codec.decode(mangle(codec.encode(_STATE)), "ListRecords", _NOW)
    assert caught.value.code == "badResumptionToken"


def test_tokens_of_another_secret_verb_or_expired_are_rejected() -> None:
    token = TokenCodec(b"k" * 32).encode(_STATE)
    for codec, verb, now in (
        (TokenCodec(b"j" * 32), "ListRecords", _NOW),
        (TokenCodec(b"k" * 32), "ListIdentifiers", _NOW),
        (TokenCodec(b"k" * 32), "ListRecords", _NOW + timedelta(hours=2)),
    ):
        with pytest.raises(OAIError) as caught:
            codec.decode(token, verb, now)
        assert caught.value.code == "badResumptionToken"

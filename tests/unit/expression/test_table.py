"""The expression language on five RSEs: expected sets and errors, table-driven."""

from __future__ import annotations

import pytest

from datamgmt.core.expression import parse_expression, rse_ids_for
from datamgmt.core.rse import get_rse_id
from datamgmt.exceptions import InvalidRSEExpression, RSEWriteBlocked

ALL = {"R1", "R2", "R3", "R4", "R5"}

#: expression -> the RSE names it selects (Rucio's semantics, then our extensions).
SELECTS = [
    ("R1", {"R1"}),
    ("*", ALL),
    ("T1", {"R1", "R2", "R3"}),
    ("T2", {"R4", "R5"}),
    ("T1=true", {"R1", "R2", "R3"}),
    ("T1=True", {"R1", "R2", "R3"}),
    ("country=fr", {"R3"}),
    ("R1|R2", {"R1", "R2"}),
    ("T1&country=de", {"R2"}),
    ("T1\\R3", {"R1", "R2"}),
    ("*\\T1", {"R4", "R5"}),
    ("*\\T1\\R5", {"R4"}),
    # strictly left to right, no precedence
    ("R1|R2&R2", {"R2"}),
    ("R2&R2|R1", {"R1", "R2"}),
    ("T1\\R3|country=fr", {"R1", "R2", "R3"}),
    ("T2|R1&country=at", {"R1"}),
    ("T2|(R1&country=at)", {"R1", "R4", "R5"}),
    # nesting
    ("(T1|T2)\\(R1|R5)", {"R2", "R3", "R4"}),
    ("((R1))", {"R1"}),
    ("(T1&(num>10&(num<30|country=fr)))", {"R2", "R3"}),
    ("*\\(T1\\(R1|R2))", {"R1", "R2", "R4", "R5"}),
    # numeric bounds (strict); booleans count 1, text is skipped
    ("num>30", {"R4", "R5"}),
    ("num<30", {"R1", "R2"}),
    ("num>10&num<50", {"R2", "R3", "R4"}),
    ("num>9", ALL),
    ("T1>0", {"R1", "R2", "R3"}),
    ("T1<2", {"R1", "R2", "R3"}),
    ("flag<1", {"R3"}),
    ("label>1", {"R2"}),
    ("num>1e1", {"R2", "R3", "R4", "R5"}),
    ("num>-5", ALL),
    # columns
    ("rse=R4", {"R4"}),
    ("rse_type=TAPE", {"R4"}),
    ("rse_type=DISK", {"R1", "R2", "R3", "R5"}),
    ("volatile", {"R3"}),
    ("volatile=false", {"R1", "R2", "R4", "R5"}),
    ("deterministic=1", ALL),
    ("availability_write=false", {"R5"}),
    ("availability=5", {"R5"}),
    # extensions
    ("num>=30", {"R3", "R4", "R5"}),
    ("num<=20", {"R1", "R2"}),
    ("country!=fr", {"R1", "R2", "R4", "R5"}),
    ("label>2.4", {"R2"}),
    ("label<=2.5&T1", {"R2"}),
    ("freespace>4.5", {"R1"}),
    ("freespace>1.5", {"R1", "R2"}),
    ("freespace<=2", {"R2"}),
    ("freespace>0|R5", {"R1", "R2", "R5"}),
]

#: expression -> (the error, a fragment of its message that says what and where).
FAILS = [
    ("R9", InvalidRSEExpression, "empty set"),
    ("country=xx", InvalidRSEExpression, "empty set"),
    ("T1&T2", InvalidRSEExpression, "empty set"),
    ("num>50", InvalidRSEExpression, "empty set"),
    ("label<abc", InvalidRSEExpression, "empty set"),
    ("volatile<1", InvalidRSEExpression, "empty set"),
    ("T1\\T1", InvalidRSEExpression, "empty set"),
    ("(R1", InvalidRSEExpression, "'(' at position 0 is never closed"),
    ("R1)", InvalidRSEExpression, "')' at position 2 closes nothing"),
    ("(R1|R2))&(R3", InvalidRSEExpression, "')' at position 7"),
    ("()", InvalidRSEExpression, "position 1"),
    ("R1||R2", InvalidRSEExpression, "position 3"),
    ("R1|", InvalidRSEExpression, "unexpected end at position 3"),
    ("|R1", InvalidRSEExpression, "position 0"),
    ("R1 | R2", InvalidRSEExpression, "whitespace at position 2"),
    ("a=b=c", InvalidRSEExpression, "position 3"),
    ("R1.X", InvalidRSEExpression, "position 2"),
    ("", InvalidRSEExpression, "empty"),
]


def names(records: list[dict]) -> list[str]:
    return [record["rse"] for record in records]


@pytest.mark.parametrize(("expression", "expected"), SELECTS, ids=[e for e, _ in SELECTS])
def test_selects(five, expression, expected):
    result = parse_expression(five, expression)
    assert names(result) == sorted(expected)


@pytest.mark.parametrize(("expression", "error", "fragment"), FAILS, ids=[e or "<empty>" for e, *_ in FAILS])
def test_fails(five, expression, error, fragment):
    with pytest.raises(error) as caught:
        parse_expression(five, expression)
    assert fragment in caught.value.message


def test_result_records_carry_the_rse_columns(five):
    (record,) = parse_expression(five, "R4")
    assert record["id"] == get_rse_id(five, "R4")
    assert (record["rse_type"], record["deterministic"], record["volatile"]) == ("TAPE", True, False)
    assert (record["availability_read"], record["availability_write"], record["availability_delete"]) == (
        True,
        True,
        True,
    )


def test_for_write_drops_write_blocked_rses(five):
    assert names(parse_expression(five, "T2", for_write=True)) == ["R4"]
    assert names(parse_expression(five, "T2")) == ["R4", "R5"]


def test_for_write_when_every_match_is_blocked(five):
    with pytest.raises(RSEWriteBlocked, match="blocked for writing"):
        parse_expression(five, "R5", for_write=True)
    assert names(parse_expression(five, "R5", for_write=True, ignore_availability=True)) == ["R5"]


def test_empty_set_is_reported_before_write_blocking(five):
    with pytest.raises(InvalidRSEExpression, match="empty set"):
        parse_expression(five, "R9", for_write=True)


def test_long_expressions_are_not_echoed_whole(five):
    long = "|".join(f"NOPE{i}" for i in range(200))
    with pytest.raises(InvalidRSEExpression) as caught:
        parse_expression(five, long)
    assert len(caught.value.message) < 120
    with pytest.raises(InvalidRSEExpression) as caught:
        parse_expression(five, long + "|")
    assert len(caught.value.message) < 120 and f"position {len(long) + 1}" in caught.value.message


def test_deleted_rses_are_never_selected(five):
    from datamgmt.core.rse import delete_rse

    delete_rse(five, "R3")
    five.commit()
    assert names(parse_expression(five, "T1")) == ["R1", "R2"]
    assert "R3" not in {n.split("-")[0] for n in names(parse_expression(five, "*"))}


def test_stored_freespace_attribute_wins_over_the_computed_one(five):
    from datamgmt.core.rse import add_rse_attribute

    add_rse_attribute(five, "R2", "freespace", "100")
    five.commit()
    assert names(parse_expression(five, "freespace>50")) == ["R2"]


def test_rse_ids_for(five):
    assert rse_ids_for(five, "R1|R2") == {get_rse_id(five, "R1"), get_rse_id(five, "R2")}

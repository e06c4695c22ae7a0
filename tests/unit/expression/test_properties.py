"""Property tests: for random RSE sets and random expression trees, the parser's result equals a
direct set-algebra evaluation of the same tree."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datamgmt.core import rse
from datamgmt.core.expression import Snapshot, evaluate, parse_expression, parse_tree
from datamgmt.exceptions import InvalidRSEExpression

NAMES = ["P0", "P1", "P2", "P3", "P4", "P5"]
TAGS = ["T1", "T2", "ok-tag"]
KEYS = ["a", "b.c", "d_e"]
VALUES = ["x", "y", "1", "2.5", "-3", "true", "false", "10"]
BOUNDS = ["0", "1", "2", "2.5", "-3", "9.75", "abc"]

#: A catalogue: RSE name -> attributes (string values, as stored).
Catalogue = dict[str, dict[str, str]]


@st.composite
def catalogues(draw: st.DrawFn) -> Catalogue:
    chosen = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=len(NAMES), unique=True))
    catalogue = {}
    for name in chosen:
        attributes = {name: "true"}
        for tag in draw(st.lists(st.sampled_from(TAGS), unique=True)):
            attributes[tag] = draw(st.sampled_from(["true", "false"]))
        for key in draw(st.lists(st.sampled_from(KEYS), unique=True)):
            attributes[key] = draw(st.sampled_from(VALUES))
        catalogue[name] = attributes
    return catalogue


# --- the oracle: expressions as (text, set function) pairs, built without the parser ----------
def number(text: str) -> float | None:
    if text.lower() in ("true", "false"):
        return 1.0 if text.lower() == "true" else 0.0
    try:
        return float(text)
    except ValueError:
        return None


def equal(catalogue: Catalogue, key: str, value: str) -> set[str]:
    if value.lower() in ("true", "false"):
        return {n for n, attrs in catalogue.items() if attrs.get(key, "").lower() == value.lower()}
    return {n for n, attrs in catalogue.items() if attrs.get(key) == value}


COMPARE = {
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


def numeric(catalogue: Catalogue, key: str, op: str, bound: str) -> set[str]:
    limit = number(bound)
    if limit is None:
        return set()
    return {
        n
        for n, attrs in catalogue.items()
        if key in attrs and number(attrs[key]) is not None and COMPARE[op](number(attrs[key]), limit)
    }


@dataclass(frozen=True)
class Expr:
    text: str
    select: object = field(compare=False)  # Catalogue -> set[str]
    binary: bool = False


leaves = st.one_of(
    st.just(Expr("*", lambda c: set(c))),
    st.sampled_from(NAMES + TAGS + ["P9"]).map(lambda w: Expr(w, lambda c, w=w: equal(c, w, "true"))),
    st.tuples(st.sampled_from(KEYS + TAGS), st.sampled_from(VALUES)).map(
        lambda kv: Expr(f"{kv[0]}={kv[1]}", lambda c, kv=kv: equal(c, *kv))
    ),
    st.tuples(st.sampled_from(KEYS + TAGS), st.sampled_from(VALUES)).map(
        lambda kv: Expr(f"{kv[0]}!={kv[1]}", lambda c, kv=kv: set(c) - equal(c, *kv))
    ),
    st.tuples(st.sampled_from(KEYS + TAGS), st.sampled_from(list(COMPARE)), st.sampled_from(BOUNDS)).map(
        lambda t: Expr(f"{t[0]}{t[1]}{t[2]}", lambda c, t=t: numeric(c, *t))
    ),
)

SET_OPS = {"|": set.union, "&": set.intersection, "\\": set.difference}


def combine(parts: tuple[str, Expr, Expr, bool, bool]) -> Expr:
    """``left op right``: a binary right operand needs parentheses (operators fold left to right),
    and either side may get redundant ones."""
    op, left, right, wrap_left, wrap_right = parts
    left_text = f"({left.text})" if wrap_left else left.text
    right_text = f"({right.text})" if wrap_right or right.binary else right.text
    return Expr(f"{left_text}{op}{right_text}", lambda c: SET_OPS[op](left.select(c), right.select(c)), True)


expressions = st.recursive(
    leaves,
    lambda children: st.tuples(
        st.sampled_from(list(SET_OPS)), children, children, st.booleans(), st.booleans()
    ).map(combine),
    max_leaves=12,
)


def snapshot_of(catalogue: Catalogue) -> Snapshot:
    moment = datetime(2024, 1, 1)
    rses = {
        name: {"id": name, "rse": name, "rse_type": "DISK", "created_at": moment, "updated_at": moment}
        for name in catalogue
    }
    attributes: dict[str, dict[str, str | float]] = {}
    for name, attrs in catalogue.items():
        for key, value in attrs.items():
            attributes.setdefault(key, {})[name] = value
    return Snapshot(rses, attributes)


@settings(max_examples=200, deadline=None)
@given(catalogue=catalogues(), expr=expressions)
def test_evaluation_equals_set_algebra(catalogue, expr):
    assert evaluate(parse_tree(expr.text), snapshot_of(catalogue)) == expr.select(catalogue)


def stored_or_computed(value: str | float, wanted: str, op: str) -> bool:
    """The oracle for one value of a key that mixes stored strings and computed floats."""
    if op == "=" and isinstance(value, str):
        return bool(equal({"r": {"k": value}}, "k", wanted))
    bound = number(wanted)
    if bound is None:
        return False
    stored = value if isinstance(value, float) else number(value)
    return stored is not None and (stored == bound if op == "=" else COMPARE[op](stored, bound))


@settings(max_examples=300, deadline=None)
@given(
    values=st.dictionaries(
        st.sampled_from(NAMES),
        st.one_of(st.sampled_from(VALUES), st.sampled_from([-3.0, 0.0, 1.0, 2.5, 9.75, 10.0, float("inf")])),
    ),
    op=st.sampled_from(["=", "!=", *COMPARE]),
    wanted=st.sampled_from(BOUNDS + VALUES),
)
def test_computed_free_space_compares_as_a_number(values, op, wanted):
    """``freespace`` mixes computed floats with stored strings (a stored attribute wins)."""
    stored = {name: {"freespace": value} for name, value in values.items() if isinstance(value, str)}
    snapshot = snapshot_of({name: stored.get(name, {}) for name in NAMES})
    snapshot.add_free_space({name: value for name, value in values.items() if isinstance(value, float)})
    positive = "=" if op == "!=" else op
    matched = {name for name, value in values.items() if stored_or_computed(value, wanted, positive)}
    expected = set(NAMES) - matched if op == "!=" else matched
    assert evaluate(parse_tree(f"freespace{op}{wanted}"), snapshot) == expected


@settings(max_examples=100, deadline=None)
@given(expr=expressions, extra=st.integers(min_value=1, max_value=3))
def test_redundant_outer_parentheses_change_nothing(expr, extra):
    assert parse_tree("(" * extra + expr.text + ")" * extra) == parse_tree(expr.text)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(catalogue=catalogues(), expr=expressions)
def test_catalogue_results_equal_set_algebra(session, catalogue, expr):
    """Through the database and the cache: the same sets, and an error exactly when empty."""
    for name, attrs in catalogue.items():
        rse.add_rse(session, name)
        for key, value in attrs.items():
            if key != name:
                rse.add_rse_attribute(session, name, key, value)
    session.commit()
    try:
        expected = expr.select(catalogue)
        if expected:
            assert [r["rse"] for r in parse_expression(session, expr.text)] == sorted(expected)
        else:
            with pytest.raises(InvalidRSEExpression, match="empty set"):
                parse_expression(session, expr.text)
    finally:
        for name in catalogue:
            rse.delete_rse(session, name)
        session.commit()

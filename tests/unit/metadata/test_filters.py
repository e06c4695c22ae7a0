"""list_dids against a Python reference filter on random catalogues (scalar and list values),
and against injection.

Generated strings are lower-case: SQLite's LIKE folds ASCII case while PostgreSQL's does
not, and ordering follows each database's collation, which agree on lower-case letters.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, update

from datamgmt.core import did, metadata, metadata_filter, scope
from datamgmt.core.db.constants import DIDType
from datamgmt.core.db.models import DataIdentifier, DIDMeta
from datamgmt.exceptions import DIDFilterSyntaxError

KEYS = {
    "run": st.integers(-5, 5),
    "energy": st.sampled_from([-1.5, 0.0, 2.25, 3.0]),
    "project": st.text("abc", min_size=1, max_size=3),
    "ok": st.booleans(),
    "taken": st.integers(0, 4).map(lambda d: datetime(2024, 1, 1) + timedelta(days=d)),
}
#: A key may hold a value of another type, so type mismatches are exercised too.
any_value = st.one_of(*KEYS.values())
#: List values (``subjects: ["physics", "astro"]``): a filter matches any element of its type.
list_value = st.lists(st.one_of(KEYS["run"], KEYS["energy"], KEYS["project"], KEYS["ok"]), max_size=3)
did_strategy = st.fixed_dictionaries(
    {
        "type": st.sampled_from([DIDType.DATASET, DIDType.CONTAINER]),
        "length": st.integers(0, 6),
        "meta": st.dictionaries(st.sampled_from(sorted(KEYS)), st.one_of(any_value, list_value), max_size=4),
    }
)


@st.composite
def condition(draw):
    key = draw(st.sampled_from([*sorted(KEYS), "length", "name"]))
    if key == "name":
        return key, draw(st.sampled_from(["=", "!="])), draw(st.sampled_from(["d0*", "d1", "*1", "d*"]))
    value = draw(KEYS["run"] if key == "length" else any_value)
    wildcard = isinstance(value, str) and draw(st.booleans())
    if wildcard:
        value = value[:1] + "*"
    ops = ["=", "!="] if wildcard or isinstance(value, bool) else list(metadata_filter.OPERATORS)
    return key, draw(st.sampled_from(ops)), value


@st.composite
def filter_groups(draw):
    groups = []
    for _ in range(draw(st.integers(1, 3))):
        conditions = draw(st.lists(condition(), max_size=3, unique_by=lambda c: (c[0], c[1])))
        kind = draw(st.sampled_from([None, "dataset", "container", "collection"]))
        groups.append((conditions, kind))
    return groups


def render(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    return str(value)


def as_string(groups) -> str:
    parts = []
    for conditions, kind in groups:
        terms = [f"{key}{op}{render(value)}" for key, op, value in conditions]
        terms += [f"type={kind}"] if kind else []
        parts.append(",".join(terms) or "name=*")
    return ";".join(parts)


def as_dicts(groups) -> list[dict]:
    suffix = {"=": "", "!=": ".ne", "<": ".lt", ">": ".gt", "<=": ".lte", ">=": ".gte"}
    result = []
    for conditions, kind in groups:
        item = {key + suffix[op]: render(value) for key, op, value in conditions}
        if kind:
            item["type"] = kind
        result.append(item)
    return result


def same_type(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, int | float) or isinstance(b, int | float):
        return isinstance(a, int | float) and isinstance(b, int | float)
    return type(a) is type(b)


def wildcard_match(stored: str, pattern: str) -> bool:
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), stored, re.S) is not None


def compare(stored, op: str, value) -> bool:
    if isinstance(value, str) and "*" in value:
        matched = wildcard_match(stored, value)
        return matched if op == "=" else not matched
    return {
        "=": stored == value,
        "!=": stored != value,
        "<": stored < value,
        ">": stored > value,
        "<=": stored <= value,
        ">=": stored >= value,
    }[op]


def reference(dids: dict[str, dict], groups) -> list[str]:
    """The filter semantics, in plain Python: the specification list_dids is checked against."""
    kinds = {
        None: {DIDType.DATASET, DIDType.CONTAINER},
        "collection": {DIDType.DATASET, DIDType.CONTAINER},
        "dataset": {DIDType.DATASET},
        "container": {DIDType.CONTAINER},
    }

    def holds(name: str, item: dict, key: str, op: str, value) -> bool:
        if key in ("name", "length"):
            return compare(name if key == "name" else item["length"], op, value)
        if key not in item["meta"]:
            return False
        stored = item["meta"][key]
        elements = stored if isinstance(stored, list) else [stored]

        def matches(how: str) -> bool:
            return any(same_type(element, value) and compare(element, how, value) for element in elements)

        return not matches("=") if op == "!=" else matches(op)

    return sorted(
        name
        for name, item in dids.items()
        if any(
            item["type"] in kinds[kind] and all(holds(name, item, *c) for c in conditions)
            for conditions, kind in groups
        )
    )


@pytest.fixture
def catalogue(session, root):
    scope.add_scope(session, "data", "root")
    session.commit()
    return session


def load(session, dids: dict[str, dict]) -> None:
    session.execute(delete(DIDMeta))
    session.execute(delete(DataIdentifier))
    did.add_collections(
        session, [{"scope": "data", "name": n, "type": i["type"].name} for n, i in dids.items()], "root"
    )
    for name, item in dids.items():
        session.execute(
            update(DataIdentifier).where(DataIdentifier.name == name).values(length=item["length"])
        )
    metadata.set_dids_metadata_bulk(
        session, [{"scope": "data", "name": n, "meta": i["meta"]} for n, i in dids.items()]
    )


LIST_EXAMPLE = [
    {"type": DIDType.DATASET, "length": 0, "meta": {"project": ["ab", 3, True]}},
    {"type": DIDType.DATASET, "length": 0, "meta": {"project": ["c"], "run": [-2.5, 4]}},
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(did_strategy, min_size=1, max_size=12), groups=filter_groups())
@example(items=LIST_EXAMPLE, groups=[([("project", "=", "ab")], None), ([("run", ">", 3)], None)])
@example(items=LIST_EXAMPLE, groups=[([("project", "!=", "c"), ("project", "=", "a*")], "dataset")])
@example(
    items=[{"type": DIDType.DATASET, "length": 0, "meta": {"energy": False, "ok": False, "run": [True]}}],
    groups=[([("run", "=", False)], None)],
)
def test_list_dids_agrees_with_the_reference_filter(catalogue, items, groups):
    dids = {f"d{index}": item for index, item in enumerate(items)}
    load(catalogue, dids)
    expected = reference(dids, groups)
    by_string = [d["name"] for d in metadata_filter.list_dids(catalogue, "data", as_string(groups))]
    by_dicts = [d["name"] for d in metadata_filter.list_dids(catalogue, "data", as_dicts(groups))]
    assert sorted(by_string) == expected, as_string(groups)
    assert sorted(by_dicts) == expected, as_dicts(groups)
    catalogue.rollback()


HOSTILE = [
    "it's",
    "' OR '1'='1",
    '"; DROP TABLE dids; --',
    "100%",
    "a_c",
    "back\\slash",
    "%",
    "_",
    "x' UNION SELECT scope, name FROM dids --",
]


@pytest.fixture
def hostile(catalogue):
    names = [f"h{index}" for index in range(len(HOSTILE))] + ["abc", "plain"]
    did.add_collections(catalogue, [{"scope": "data", "name": n, "type": "DATASET"} for n in names], "root")
    values = [*HOSTILE, "abc", "100 and more"]
    metadata.set_dids_metadata_bulk(
        catalogue,
        [{"scope": "data", "name": n, "meta": {"title": v}} for n, v in zip(names, values, strict=True)],
    )
    return catalogue


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_match_only_themselves(hostile, value):
    found = [d["name"] for d in metadata_filter.list_dids(hostile, "data", {"title": value})]
    assert found == [f"h{HOSTILE.index(value)}"]
    assert hostile.scalar(select(func.count()).select_from(DataIdentifier)) == len(HOSTILE) + 2


def test_like_metacharacters_are_literal_and_star_is_the_wildcard(hostile):
    def names(filters):
        return sorted(d["name"] for d in metadata_filter.list_dids(hostile, "data", filters))

    assert names({"title": "a_c"}) == ["h4"]  # "_" does not match the "b" of "abc"
    assert names({"title": "100%"}) == ["h3"]  # "%" does not match " and more"
    assert names({"title": "100*"}) == ["h3", "plain"]
    assert names({"title": "*'*"}) == ["h0", "h1", "h8"]
    assert names({"title": "back\\*"}) == ["h5"]
    assert names("title=*") == sorted(["abc", "plain", *[f"h{i}" for i in range(len(HOSTILE))]])
    assert names({"name": "h1*", "title.ne": "_"}) == ["h1"]


def test_hostile_keys_are_refused(hostile):
    for key in ["title' OR 1=1 --", "x;drop", "a b", "key.zz"]:
        with pytest.raises(DIDFilterSyntaxError):
            list(metadata_filter.list_dids(hostile, "data", {key: "1"}))

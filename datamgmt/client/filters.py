"""The ``--filter`` grammar of Rucio's CLI, turned into the search endpoint's filter list.

``,`` joins conditions inside one group (AND); ``;`` starts the next group (OR). Operators become
key suffixes and values stay strings, exactly what ``GET /dids/{scope}/dids/search`` expects:
``length>5,project=e2e;run_number=3`` gives
``[{'length.gt': '5', 'project': 'e2e', 'name': '*'}, {'run_number': '3', 'name': '*'}]``.
"""

from __future__ import annotations

import re

from datamgmt.exceptions import DIDFilterSyntaxError

# Longest operators first, so ``>=`` is not read as ``>``.
_OPERATORS = (
    (">=", ".gte"),
    ("<=", ".lte"),
    ("!=", ".ne"),
    ("==", ""),
    (">", ".gt"),
    ("<", ".lt"),
    ("=", ""),
)
_CONDITION = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(>=|<=|!=|==|>|<|=)\s*(.*?)\s*$")
DID_TYPES = ("all", "collection", "container", "dataset", "file")


def parse_filter(expression: str, name: str = "*") -> list[dict[str, str]]:
    """Groups of conditions; each group also matches ``name`` (a wildcard pattern)."""
    groups = []
    for group_text in expression.split(";"):
        group: dict[str, str] = {}
        for condition in filter(str.strip, group_text.split(",")):
            match = _CONDITION.match(condition)
            if not match or not match.group(3) or match.group(3)[0] in "<>=!":
                raise DIDFilterSyntaxError(
                    f"Cannot parse filter condition {condition!r}: use KEY OP VALUE with OP one of "
                    "=, !=, <, <=, >, >=, e.g. 'run>3'"
                )
            key, operator, value = match.groups()
            suffix = dict(_OPERATORS)[operator]
            if key == "type":
                if suffix or value.lower() not in DID_TYPES:
                    raise DIDFilterSyntaxError(f"type must be '=' one of {DID_TYPES}, not {condition!r}")
                value = value.lower()
            if key + suffix in group:
                raise DIDFilterSyntaxError(f"{key}{operator} appears twice in one filter group")
            group[key + suffix] = value
        group.setdefault("name", name)
        groups.append(group)
    return groups

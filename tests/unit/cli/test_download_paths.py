"""Where ``datamgmt download`` puts ``scope:name`` (the pure mapping; the hostile-server test drives the CLI)."""

from __future__ import annotations

import pytest

from datamgmt.client.localpaths import relative_target
from datamgmt.exceptions import InvalidPath


@pytest.mark.parametrize(
    ("scope", "name", "expected"),
    [
        ("cms", "/store/mc/file.root", "cms/store/mc/file.root"),
        ("cms", "//store//mc/file.root", "cms/store/mc/file.root"),
        ("user.jdoe", "file.txt", "user.jdoe/file.txt"),
        ("user.jdoe", "run1/file..txt", "user.jdoe/run1/file..txt"),
        ("user.jdoe", "...", "user.jdoe/..."),
    ],
)
def test_names_map_below_the_scope_directory(scope: str, name: str, expected: str) -> None:
    assert relative_target(scope, name) == expected


@pytest.mark.parametrize(
    ("scope", "name"),
    [
        ("cms", "/store/../../x"),
        ("cms", ".."),
        ("a/b", "x"),
        ("..", "x"),
        ("cms", "x\x00"),
        ("cms", "a\\b"),
        ("", "x"),
    ],
)
def test_unsafe_scopes_and_names_are_refused(scope: str, name: str) -> None:
    with pytest.raises(InvalidPath):
        relative_target(scope, name)

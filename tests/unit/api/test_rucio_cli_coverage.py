"""Every stock rucio-clients 41 command is run by a test, not applicable with a reason, or pending.

The list of commands is read from the clients' own parsers (``tests/rucio_cli/generate.py``);
the integration tests declare what they run, and their ``rucio`` fixture checks the declaration.
"""

from __future__ import annotations

import re

from tests.rucio_cli.coverage import ROOT, all_commands, command_of, declared, not_applicable, pending, table


def test_every_command_has_exactly_one_status() -> None:
    commands = all_commands()
    tests, skipped, waiting = set(declared()), set(not_applicable()), set(pending())
    assert len(commands) == len(set(commands)) > 150
    assert not (tests & skipped) and not (tests & waiting) and not (skipped & waiting), (
        "a command in two places"
    )
    assert set(commands) == tests | skipped | waiting, sorted(set(commands) - tests - skipped - waiting)
    print(f"stock commands run by tests: {len(tests)}/{len(commands)}, not applicable {len(skipped)}")


def test_not_applicable_commands_give_a_reason() -> None:
    assert all(reason for reason in not_applicable().values())


def test_declared_tests_exist() -> None:
    for command, tests in declared().items():
        for test in tests:
            path, function = test.split("::")
            assert re.search(rf"^def {function}\(", (ROOT / path).read_text(), re.M), (command, test)


def test_commands_are_recognised_as_the_fixture_sees_them() -> None:
    assert command_of("rucio", ["rule", "add", "s:n", "--copies", "1"]) == "rucio rule add"
    assert command_of("rucio", ["add-rule", "s:n", "1", "tier=1"]) == "rucio --legacy add-rule"
    assert command_of("rucio", ["--legacy", "list-files", "s:n"]) == "rucio --legacy list-files"
    assert (
        command_of("rucio-admin", ["rse", "add-protocol", "--scheme", "file", "X"])
        == "rucio-admin rse add-protocol"
    )
    assert command_of("rucio", ["--version"]) is None


def test_the_compatibility_table_is_current() -> None:
    """docs/rucio-compatibility.md carries the table this module generates."""
    doc = (ROOT / "docs" / "rucio-compatibility.md").read_text()
    assert table() in doc, "regenerate it: python -m tests.rucio_cli.coverage"

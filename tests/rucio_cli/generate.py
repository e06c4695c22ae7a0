"""Regenerate ``commands.json``: every command of the stock rucio-clients 41 CLIs.

Read from the clients' own parsers (click for ``rucio``, argparse for ``rucio --legacy`` and
``rucio-admin``), not transcribed.  Run with the interpreter of a rucio-clients 41 install::

    python tests/rucio_cli/generate.py > tests/rucio_cli/commands.json
"""

from __future__ import annotations

import argparse
import json
import sys

import click
from rucio.cli.bin_legacy import rucio as legacy
from rucio.cli.bin_legacy import rucio_admin as legacy_admin
from rucio.cli.command import main


def click_commands(group: click.Group, context: click.Context, path: list[str]) -> list[str]:
    """Every leaf command below ``group``, as its words."""
    found = []
    for name in sorted(group.list_commands(context)):
        command = group.get_command(context, name)
        if isinstance(command, click.Group):
            found += click_commands(command, click.Context(command, parent=context), [*path, name])
        elif command is not None:
            found.append(" ".join([*path, name]))
    return found


def argparse_commands(parser: argparse.ArgumentParser, path: list[str]) -> list[str]:
    """Every leaf sub-command of ``parser``, as its words."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += argparse_commands(sub, [*path, name]) or [" ".join([*path, name])]
    return found


if __name__ == "__main__":
    commands = {
        "rucio": click_commands(main, click.Context(main), ["rucio"]),
        "rucio --legacy": argparse_commands(legacy.get_parser(), ["rucio", "--legacy"]),
        "rucio-admin": argparse_commands(legacy_admin.get_parser(), ["rucio-admin"]),
    }
    json.dump(commands, sys.stdout, indent=1)
    sys.stdout.write("\n")

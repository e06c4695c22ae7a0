"""Turn every error into one readable line and an exit status."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from datamgmt.exceptions import DatamgmtError

VERBOSE_FLAGS = ("--verbose", "-v")


def run_cli(group: click.Group, args: Sequence[str] | None = None) -> int:
    """Run a click group: errors print ``Error: <class>: <message>`` and exit 1 (2 for usage).

    ``--verbose`` (or ``DATAMGMT_VERBOSE=1``) lets the traceback through instead.
    """
    argv = list(sys.argv[1:] if args is None else args)
    verbose = os.environ.get("DATAMGMT_VERBOSE") == "1" or any(flag in argv for flag in VERBOSE_FLAGS)
    try:
        result = group.main(args=argv, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except DatamgmtError as exc:
        if verbose:
            raise
        click.echo(f"Error: {exc.error_class}: {exc.message}", err=True)
        return 1
    except (OSError, ValueError) as exc:
        if verbose:
            raise
        click.echo(f"Error: {type(exc).__name__}: {exc}", err=True)
        return 1
    # Without standalone mode click returns the code of ``ctx.exit(n)`` instead of exiting.
    return result if isinstance(result, int) else 0


class CliGroup(click.Group):
    """A group whose ``main`` (so also click's CliRunner) reports errors the ``run_cli`` way."""

    def main(  # type: ignore[override]
        self, args: Sequence[str] | None = None, *posargs: Any, standalone_mode: bool = True, **extra: Any
    ) -> Any:
        if not standalone_mode:
            return super().main(args, *posargs, standalone_mode=False, **extra)
        sys.exit(run_cli(self, args))

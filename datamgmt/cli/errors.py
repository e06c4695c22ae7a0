"""Turn every error into one readable line and an exit status."""

from __future__ import annotations

import os

import click

from datamgmt.exceptions import DatamgmtError


def run_cli(group: click.Group) -> int:
    """Run a click group: errors print ``Error: <class>: <message>`` and exit 1 (2 for usage)."""
    verbose = os.environ.get("DATAMGMT_VERBOSE") == "1"
    try:
        group.main(standalone_mode=False)
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
    return 0

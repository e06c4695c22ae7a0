"""``datamgmt-admin``: commands for community admins."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Administer a datamgmt service: catalogue, accounts, RSEs, quotas, PID services."""

"""``datamgmt-admin``: server-side commands next to the HTTP admin commands.

``db upgrade``, ``bootstrap`` and ``check`` act on the catalogue directly, so they import
the core lazily; everything else comes from :mod:`datamgmt.cli.admin`, which speaks HTTP
only.  A client-only install therefore never loads the server's dependencies.
"""

from __future__ import annotations

import os
import secrets
import sys
from importlib import resources
from pathlib import Path

import click


@click.group("db")
def db_group() -> None:
    """Create or migrate the catalogue schema at [database] url."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
def db_upgrade(revision: str) -> None:
    """Create the catalogue or upgrade it to the newest schema; with multi-VO, every VO's too."""
    from datamgmt.core import vo
    from datamgmt.core.db.migrate import upgrade

    upgrade(revision=revision)
    click.echo(f"catalogue upgraded to {revision}")
    for other in vo.registered_vos()[1:]:
        upgrade(vo.catalogue_url(None, other), revision=revision)
        click.echo(f"catalogue of VO {other} upgraded to {revision}")


@db_group.command("downgrade")
@click.option("--revision", required=True, help="Alembic revision to go back to ('base' drops everything).")
def db_downgrade(revision: str) -> None:
    """Undo migrations down to a revision."""
    from datamgmt.core.db.migrate import downgrade

    downgrade(revision=revision)
    click.echo(f"catalogue downgraded to {revision}")


@click.command("bootstrap")
@click.option("--username", required=True, help="userpass identity of the root account")
@click.option("--password", help="its password (at least 8 characters)")
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="read the password from this file; if it does not exist, generate a random password, "
    "write it there (mode 0600) and print it once",
)
@click.option("--reset-password", is_flag=True, help="set the password even if root already has one")
def bootstrap_command(
    username: str, password: str | None, password_file: Path | None, reset_password: bool
) -> None:
    """Create the root account (SERVICE, admin) and the default PID service; idempotent.

    An existing root password is never changed without --reset-password.
    """
    from datamgmt.config import get_config
    from datamgmt.core.bootstrap import bootstrap
    from datamgmt.core.db.session import transaction

    if (password is None) == (password_file is None):
        raise click.UsageError("give exactly one of --password and --password-file")
    generated = password_file is not None and not password_file.exists()
    if password_file is not None:
        password = secrets.token_urlsafe(18) if generated else password_file.read_text().strip()
    with transaction() as session:
        changed = bootstrap(
            session, username, password or "", get_config().get("pid", "local_prefix"), reset_password
        )
    if not changed:
        click.echo(
            f"root account ready with identity {username}; its existing password was left unchanged "
            "(--reset-password sets a new one)"
        )
        return
    if generated and password_file is not None:
        password_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{password}\n")
        click.echo(f"root account ready with identity {username} and the generated password {password}")
        click.echo(f"(shown only this once; it is kept in {password_file}, readable by you alone)")
    else:
        click.echo(f"root account ready with identity {username}")


@click.group("config")
def config_group() -> None:
    """The server's configuration file."""


@config_group.command("template")
def config_template() -> None:
    """Print the configuration template (every option, its default and why), to start a
    datamgmt.cfg from: it ships inside the package, so this works from an installed wheel."""
    click.echo((resources.files("datamgmt") / "etc" / "datamgmt.cfg.template").read_text(), nl=False)


@click.command("check")
@click.option(
    "--storage", is_flag=True, help="also walk every RSE and compare its files with the AVAILABLE replicas"
)
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@click.option("--db-url", default=None, help="catalogue to check (default [database] url)")
@click.option("--vo", default="def", show_default=True, help="the VO whose catalogue to check (multi-VO)")
@click.option(
    "--examples",
    default=5,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="example rows shown per violated invariant",
)
@click.pass_context
def check_command(
    ctx: click.Context, storage: bool, as_json: bool, db_url: str | None, vo: str, examples: int
) -> None:
    """Check the catalogue's invariants; exit 0 when all hold, 1 on any violation.

    Run it at a quiet moment (daemons idle): an invariant may be briefly false mid-batch.
    """
    import json

    from datamgmt.core import vo as vos
    from datamgmt.core.db.session import transaction
    from datamgmt.core.invariants import check

    if vo != vos.DEFAULT_VO and not vos.is_registered(vos.vo_name(vo), db_url):
        raise click.ClickException(f"VO {vo} is not served here")
    with transaction(vos.catalogue_url(db_url, vo), read_only=True) as session:
        report = check(session, storage=storage, examples=examples)
    click.echo(json.dumps(report.to_dict(), indent=2, default=str) if as_json else report.render())
    ctx.exit(0 if report.ok else 1)


def build_cli() -> click.Group:
    from datamgmt.cli.admin import cli as admin_cli

    admin_cli.add_command(db_group)
    admin_cli.add_command(bootstrap_command)
    admin_cli.add_command(check_command)
    admin_cli.add_command(config_group)
    return admin_cli


def main() -> None:
    from datamgmt.cli.errors import run_cli

    sys.exit(run_cli(build_cli()))

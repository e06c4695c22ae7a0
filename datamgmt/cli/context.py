"""What every command shares: the client (made on first use), output switches and DID parsing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click
from click.shell_completion import CompletionItem

from datamgmt.cli.completion import complete_did
from datamgmt.cli.errors import CliGroup
from datamgmt.cli.output import Output
from datamgmt.client import Client, ClientConfig


@dataclass
class AppContext:
    config_path: str | None = None
    script: str = "datamgmt"
    output: Output = field(default_factory=Output)
    _client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(ClientConfig.load(self.config_path), script=self.script)
        return self._client


def _set_flag(attribute: str) -> Callable[[click.Context, click.Parameter, bool], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: bool) -> None:
        if value:
            setattr(ctx.ensure_object(AppContext).output, attribute, True)

    return callback


def output_params() -> list[click.Parameter]:
    """``--json`` and ``--bytes``: accepted by the root group and by every command."""
    return [
        click.Option(
            ["--json", "as_json"],
            is_flag=True,
            expose_value=False,
            callback=_set_flag("json"),
            help="Machine output: one JSON document, or one per line for lists.",
        ),
        click.Option(
            ["--bytes", "raw_bytes"],
            is_flag=True,
            expose_value=False,
            callback=_set_flag("raw_bytes"),
            help="Sizes as exact byte counts instead of human units.",
        ),
    ]


class Command(click.Command):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(output_params())


class Group(CliGroup):
    """Subcommands get the output options; nested groups are of this class too."""

    command_class = Command
    group_class = type

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", {"help_option_names": ["-h", "--help"]})
        super().__init__(*args, **kwargs)


def make_root(script: str, help_text: str) -> Group:
    """The top group of a CLI: ``--config``, ``--verbose`` and the output options."""

    def callback(config_path: str | None, verbose: bool) -> None:
        app = click.get_current_context().ensure_object(AppContext)
        app.config_path, app.script = config_path, script

    params: list[click.Parameter] = [
        click.Option(
            ["--config", "config_path"],
            type=click.Path(exists=True, dir_okay=False),
            default=None,
            help="Client config file (default $DATAMGMT_CLIENT_CONFIG or ~/.datamgmt/client.cfg).",
        ),
        # Read by run_cli before parsing; declared so that click accepts it.
        click.Option(["--verbose", "-v"], is_flag=True, help="Show the traceback of an error."),
        *output_params(),
    ]
    return Group(name=script, callback=callback, params=params, help=help_text)


pass_app = click.make_pass_decorator(AppContext, ensure=True)


def parse_did(text: str) -> tuple[str, str]:
    """``scope:name``; a usage error otherwise."""
    scope, sep, name = text.partition(":")
    if not sep or not scope or not name:
        raise click.BadParameter(f"{text!r} is not a DID: use SCOPE:NAME")
    return scope, name


class DIDType(click.ParamType):
    name = "SCOPE:NAME"

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        return complete_did(ctx, incomplete)

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        try:
            return parse_did(value)
        except click.BadParameter as error:
            self.fail(error.message, param, ctx)


DID = DIDType()

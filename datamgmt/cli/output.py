"""How results look: rich tables for people, JSON for programs.

Commands describe their columns once; the same rows then become a table (sizes in human units,
states coloured) or JSON (``--json``: one document, or one line per item for lists).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from datamgmt.client.units import human_size

RULE_STATE_STYLES = {
    "OK": "bold green",
    "REPLICATING": "yellow",
    "STUCK": "bold red",
    "SUSPENDED": "magenta",
    "WAITING_APPROVAL": "cyan",
    "INJECT": "blue",
    "AVAILABLE": "green",
    "COPYING": "yellow",
    "UNAVAILABLE": "red",
    "BAD": "bold red",
    "BEING_DELETED": "magenta",
    "TEMPORARY_UNAVAILABLE": "yellow",
    "ACTIVE": "green",
    "STAGING": "cyan",
    "ARCHIVING": "blue",
}
LOCK_STYLES = (("locks_ok_cnt", "green"), ("locks_replicating_cnt", "yellow"), ("locks_stuck_cnt", "red"))


def parse_size(text: str) -> int:
    """``10GB``, ``1.5 TiB``, ``512`` or ``infinity`` (-1, no limit) to bytes."""
    cleaned = text.strip().replace(" ", "")
    if cleaned.lower() in ("infinity", "inf", "unlimited", "-1"):
        return -1
    number = cleaned.rstrip("BbiIkKMGTPE")
    unit = cleaned[len(number) :].upper().rstrip("B")
    binary = unit.endswith("I")
    unit = unit.rstrip("I")
    powers = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}
    if unit not in powers:
        raise click.BadParameter(f"Unknown size unit in {text!r}")
    try:
        return int(float(number) * (1024 if binary else 1000) ** powers[unit])
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a size") from None


@dataclass(frozen=True)
class Column:
    """One table column: a key of the row, its header, and how to render the value."""

    key: str
    header: str = ""
    #: ``text``, ``size`` (human units unless --bytes), ``state`` (coloured) or ``locks``.
    kind: str = "text"

    @property
    def title(self) -> str:
        return self.header or self.key.replace("_", " ")


def locks_text(row: Mapping[str, Any]) -> Text:
    """``ok/replicating/stuck`` lock counts, each in its colour."""
    text = Text()
    for position, (key, style) in enumerate(LOCK_STYLES):
        if position:
            text.append("/")
        text.append(str(row.get(key, 0)), style=style if row.get(key) else "dim")
    return text


#: Rucio's wire format for dates (RFC 1123 with a literal UTC), which the CLI shows as ISO 8601.
_RFC1123 = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} UTC$")


def iso_dates(value: Any) -> Any:
    """``value`` with every date in Rucio's wire format rewritten as ISO 8601 (``2024-05-01T12:00:00Z``)."""
    if isinstance(value, str) and _RFC1123.match(value):
        return datetime.strptime(value, "%a, %d %b %Y %H:%M:%S UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value.tzinfo is None else value.isoformat()
    if isinstance(value, Mapping):
        return {key: iso_dates(item) for key, item in value.items()}
    if isinstance(value, list):
        return [iso_dates(item) for item in value]
    return value


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


class Output:
    """Writes to the current stdout (which click's test runner swaps), never caching it."""

    def __init__(self) -> None:
        self.json = False
        self.raw_bytes = False

    @property
    def console(self) -> Console:
        # Off a terminal, a wide fixed width keeps rows whole for grep and tests.
        width = None if sys.stdout.isatty() else max(shutil.get_terminal_size((200, 24)).columns, 200)
        return Console(file=sys.stdout, width=width, highlight=False)

    def cell(self, column: Column, row: Mapping[str, Any]) -> str | Text:
        if column.kind == "locks":
            return locks_text(row)
        value = iso_dates(row.get(column.key))
        if column.kind == "size" and isinstance(value, int) and not self.raw_bytes:
            return human_size(value)
        if column.kind == "state" and value is not None:
            return Text(str(value), style=RULE_STATE_STYLES.get(str(value), ""))
        return _plain(value)

    def table(
        self, rows: Iterable[Mapping[str, Any]], columns: Sequence[Column], title: str | None = None
    ) -> int:
        """A table (or JSON lines); returns how many rows there were."""
        count = 0
        if self.json:
            for row in rows:
                click.echo(json.dumps(iso_dates(row), default=str))
                count += 1
            return count
        table = Table(*(column.title for column in columns), title=title, header_style="bold")
        for row in rows:
            table.add_row(*(self.cell(column, row) for column in columns))
            count += 1
        self.console.print(table)
        return count

    def record(self, document: Mapping[str, Any], columns: Sequence[Column] | None = None) -> None:
        """One object: JSON, or a two-column key/value table (known columns rendered by kind)."""
        document = iso_dates(document)
        if self.json:
            click.echo(json.dumps(document, default=str))
            return
        known = {column.key: column for column in columns or ()}
        table = Table("key", "value", show_header=False, box=None, pad_edge=False)
        for key, value in document.items():
            column = known.get(key, Column(key))
            table.add_row(Text(key, style="bold"), self.cell(column, {**document, key: value}))
        self.console.print(table)

    def done(self, message: str, **document: Any) -> None:
        """The result of an action: a sentence for people, a JSON object for programs."""
        click.echo(json.dumps(iso_dates(document), default=str) if self.json else message)

    @staticmethod
    def warn(message: str) -> None:
        click.echo(f"Warning: {message}", err=True)

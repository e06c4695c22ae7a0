"""Byte counts as people read them, shared by the CLI's tables and the client's error messages."""

from __future__ import annotations

UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB")


def human_size(value: int | None) -> str:
    """Decimal units, as Rucio prints and parses them (``10GB`` is 10^10 bytes); -1 is a limit's "unlimited"."""
    if value is None:
        return ""
    if value < 0:
        return "unlimited"
    size, unit = float(value), 0
    while size >= 1000 and unit < len(UNITS) - 1:
        size, unit = size / 1000, unit + 1
    return f"{value} B" if unit == 0 else f"{size:.1f} {UNITS[unit]}"

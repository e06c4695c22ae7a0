"""Run-time configuration kept in the catalogue (Rucio's ``configs`` table, served at ``/config``).

The INI file (:mod:`datamgmt.config`) says how the service starts; this table holds what an
admin changes while it runs, and core reads it where Rucio reads its ``configs``: the lifetime
model's ``cutoff_date`` and ``max_extension`` (:mod:`datamgmt.core.lifetime_exception`).
Values are stored as text, as Rucio stores them, and read back auto-typed the way Rucio's REST
answers them (``true``/``yes``/``on`` are booleans, numbers are numbers, anything else text).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from datamgmt.core.db.models import ConfigOption
from datamgmt.core.db.rows import rowcount
from datamgmt.core.db.types import utcnow
from datamgmt.core.validation import shown
from datamgmt.exceptions import ConfigNotFound, InputValidationError, MalformedRequest

#: Longest section or option name, and value, the table holds.
NAME_LIMIT = 128
VALUE_LIMIT = 4000


def auto_typed(value: str) -> bool | int | float | str:
    """Rucio's ``convert_to_any_type``: what ``GET /config`` answers for a stored text."""
    lowered = value.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    return value


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > NAME_LIMIT:
        raise InputValidationError(
            f"a config {what} must be text of 1 to {NAME_LIMIT} characters, not {shown(value)}"
        )
    return value


def _text(value: object) -> str:
    if isinstance(value, (dict, list)) or value is None:
        raise InputValidationError(f"a config value must be a string, number or boolean, not {shown(value)}")
    text = str(value)
    if len(text) > VALUE_LIMIT:
        raise InputValidationError(f"a config value may have at most {VALUE_LIMIT} characters")
    return text


def items(session: Session, section: str | None = None) -> dict[str, dict[str, Any]]:
    """Every section (or one) as ``{section: {option: value}}``, values auto-typed."""
    query = select(ConfigOption.section, ConfigOption.opt, ConfigOption.value).order_by(
        ConfigOption.section, ConfigOption.opt
    )
    if section is not None:
        query = query.where(ConfigOption.section == section)
    result: dict[str, dict[str, Any]] = {}
    for row in session.execute(query):
        result.setdefault(row.section, {})[row.opt] = auto_typed(row.value)
    return result


def section_items(session: Session, section: str) -> dict[str, Any]:
    found = items(session, section)
    if section not in found:
        raise ConfigNotFound(f"No configuration found for section {shown(section)}")
    return found[section]


def get_text(session: Session, section: str, option: str) -> str | None:
    """The stored text of one option, or None: for core modules that read a setting."""
    return session.execute(
        select(ConfigOption.value).where(ConfigOption.section == section, ConfigOption.opt == option)
    ).scalar_one_or_none()


def get(session: Session, section: str, option: str) -> Any:
    value = get_text(session, section, option)
    if value is None:
        raise ConfigNotFound(f"No configuration found for section {shown(section)} option {shown(option)}")
    return auto_typed(value)


def set_options(session: Session, options: dict[str, dict[str, Any]]) -> None:
    """Set many ``{section: {option: value}}`` at once: every name and value is checked first."""
    rows: list[tuple[str, str, str]] = []
    for section, section_options in options.items():
        _name(section, "section")
        if not isinstance(section_options, dict):
            raise MalformedRequest(f"the options of section {shown(section)} must be an object")
        rows.extend(
            (section, _name(option, "option"), _text(value)) for option, value in section_options.items()
        )
    if not rows:
        return
    now = utcnow()
    existing = set(
        session.execute(
            select(ConfigOption.section, ConfigOption.opt).where(
                ConfigOption.section.in_({row[0] for row in rows}),
                ConfigOption.opt.in_({row[1] for row in rows}),
            )
        ).tuples()
    )
    changed = [{"s": s, "o": o, "v": v, "now": now} for s, o, v in rows if (s, o) in existing]
    if changed:
        table = ConfigOption.__table__.c
        session.execute(
            update(ConfigOption.__table__)
            .where(table.section == bindparam("s"), table.opt == bindparam("o"))
            .values(value=bindparam("v"), updated_at=bindparam("now")),
            changed,
        )
    new = [
        ConfigOption(section=s, opt=o, value=v, created_at=now, updated_at=now)
        for s, o, v in rows
        if (s, o) not in existing
    ]
    session.add_all(new)
    session.flush()


def remove_section(session: Session, section: str) -> None:
    if not rowcount(session.execute(delete(ConfigOption).where(ConfigOption.section == section))):
        raise ConfigNotFound(f"No configuration found for section {shown(section)}")


def remove_option(session: Session, section: str, option: str) -> None:
    removed = session.execute(
        delete(ConfigOption).where(ConfigOption.section == section, ConfigOption.opt == option)
    )
    if not rowcount(removed):
        raise ConfigNotFound(f"No configuration found for section {shown(section)} option {shown(option)}")

"""Name and value checks shared by the core services.

Errors quote at most a short prefix of the offending value: bad input is named,
never echoed back whole.
"""

from __future__ import annotations

import re

from datamgmt.exceptions import InputValidationError

ACCOUNT_RE = re.compile(r"^[a-z0-9_-]{1,25}$")
SCOPE_RE = re.compile(r"^[a-zA-Z0-9_.-]{1,25}$")
NAME_RE = re.compile(r"^[/A-Za-z0-9][/A-Za-z0-9._-]{0,249}$")
RSE_RE = re.compile(r"^[A-Z0-9]+([_-][A-Z0-9]+)*$")
ADLER32_RE = re.compile(r"^[0-9a-fA-F]{8}$")
MD5_RE = re.compile(r"^[0-9a-fA-F]{32}$")
ATTR_KEY_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,255}$")


def shown(value: object, limit: int = 40) -> str:
    """A bounded, quoted rendering of user input for error messages."""
    text = str(value)
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _check(pattern: re.Pattern[str], value: object, what: str, rule: str) -> str:
    # fullmatch: ``$`` alone would also accept a trailing newline ("name\n").
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InputValidationError(f"invalid {what} {shown(value)}: {rule}")
    if what == "name" and ("/../" in f"/{value}/" or "//" in value):
        raise InputValidationError(f"invalid name {shown(value)}: '..' and '//' are not allowed")
    return value


def account_shown(value: str) -> str:
    """An account name for an error message: as is when valid (as Rucio words it), else :func:`shown`."""
    return value if ACCOUNT_RE.fullmatch(value) else shown(value)


def account_name(value: object) -> str:
    return _check(ACCOUNT_RE, value, "account", "1-25 characters of a-z, 0-9, '-' and '_'")


def scope_name(value: object) -> str:
    return _check(SCOPE_RE, value, "scope", "1-25 characters of a-z, A-Z, 0-9, '.', '-' and '_'")


def did_name(value: object) -> str:
    return _check(NAME_RE, value, "name", "1-250 characters of letters, digits, '/', '.', '-' and '_'")


def rse_name(value: object) -> str:
    return _check(RSE_RE, value, "RSE name", "upper-case letters and digits separated by '-' or '_'")


def attribute_key(value: object) -> str:
    return _check(ATTR_KEY_RE, value, "attribute key", "1-255 characters of letters, digits, '_.:-'")


def adler32(value: object) -> str:
    return _check(ADLER32_RE, value, "adler32", "8 hexadecimal digits").lower()


def md5(value: object) -> str:
    return _check(MD5_RE, value, "md5", "32 hexadecimal digits").lower()


def non_negative_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputValidationError(f"{what} must be a non-negative integer, not {shown(value)}")
    return value

"""Request bodies checked against the JSON schema that ``/openapi.json`` publishes for their route.

A view declares its body's schema once, in its :func:`datamgmt.api.openapi.doc` annotation; the
body is validated against that same schema when the view reads it (:func:`datamgmt.api.params.json_body`),
so the documented API and the served one cannot drift apart.

Errors follow Rucio: a missing required key is its ``KeyError`` (``'name' not defined``), any
other violation its ``InvalidObject``, unless the violated (sub)schema names the class Rucio
answers there with the extension keyword ``x-rucio-error`` (``UnsupportedKeyType`` for an
unknown metadata key type, ``ValueError`` for a config section that is not an object...). The message names the offending field, what was expected
and a bounded rendering of the value, never the whole input.

An optional property may be ``null``, as the stock client sends unset options, and as the
views have always read them (``null`` means "not given").

jsonschema stays the authority on what a schema means, but it costs about 50 µs per item of a
bulk body (attaching 500 DIDs: 25 ms, more than the database's work).  Each schema is therefore
also compiled to plain Python by fastjsonschema (no defaults filled in, formats ignored as
jsonschema ignores them here): a body it accepts is valid, and only a body it rejects is run
through jsonschema, which either finds the violation to report or, where the two differ,
accepts the body.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

import fastjsonschema
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

from datamgmt.core.validation import shown
from datamgmt.exceptions import InvalidObject, MissingParameter

#: The schema keyword that names Rucio's exception class for a violation of that (sub)schema.
ERROR_KEYWORD = "x-rucio-error"

_VALIDATORS: dict[int, tuple[dict[str, Any], Draft7Validator, Callable[[Any], Any]]] = {}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` admitting ``null`` as well."""
    kind = schema.get("type")
    if isinstance(kind, str):
        return {**schema, "type": [kind, "null"]}
    if isinstance(kind, list):
        return {**schema, "type": [*kind, "null"]} if "null" not in kind else schema
    if "enum" in schema:
        return {**schema, "enum": [*schema["enum"], None]}
    return schema


def _optional_nullable(schema: Any) -> Any:
    """A copy of ``schema`` whose optional object properties also admit ``null``, at every depth."""
    if isinstance(schema, list):
        return [_optional_nullable(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: _optional_nullable(value) for key, value in schema.items() if key != "properties"}
    if isinstance(schema.get("properties"), dict):
        required = set(schema.get("required", ()))
        result["properties"] = {
            name: (_optional_nullable(sub) if name in required else _nullable(_optional_nullable(sub)))
            for name, sub in schema["properties"].items()
        }
    return result


def _compiled(schema: dict[str, Any]) -> tuple[dict[str, Any], Draft7Validator, Callable[[Any], Any]]:
    """A view's schema, its jsonschema validator and its fast check, built once per schema object."""
    cached = _VALIDATORS.get(id(schema))
    if cached is None or cached[0] is not schema:
        Draft7Validator.check_schema(schema)
        effective = _optional_nullable(copy.deepcopy(schema))
        fast = fastjsonschema.compile(effective, use_default=False, use_formats=False)
        cached = (schema, Draft7Validator(effective), fast)
        _VALIDATORS[id(schema)] = cached
    return cached


def validator(schema: dict[str, Any]) -> Draft7Validator:
    """The jsonschema validator of a view's schema (the authority, and the error messages)."""
    return _compiled(schema)[1]


def _value(value: Any) -> str:
    """The offending value, bounded; rendering a deeply nested one would exhaust the stack."""
    if isinstance(value, (list, dict)):
        return f"a JSON {'array' if isinstance(value, list) else 'object'} of {len(value)} items"
    return shown(value)


def _where(path: Iterable[Any]) -> str:
    parts = [
        f"[{part}]" if isinstance(part, int) else (f".{part}" if index else str(part))
        for index, part in enumerate(path)
    ]
    return "".join(parts) or "the body"


def _expected(error: ValidationError) -> str:
    """What the schema wanted, in words."""
    value = error.validator_value
    words = {
        "type": lambda: f"of type {' or '.join(value) if isinstance(value, list) else value}",
        "enum": lambda: "one of " + ", ".join(shown(item, 20) for item in value[:10]),
        "minimum": lambda: f">= {value}",
        "maximum": lambda: f"<= {value}",
        "exclusiveMinimum": lambda: f"> {value}",
        "exclusiveMaximum": lambda: f"< {value}",
        "minLength": lambda: f"at least {value} characters long",
        "maxLength": lambda: f"at most {value} characters long",
        "minItems": lambda: f"a list of at least {value} items",
        "maxItems": lambda: f"a list of at most {value} items",
        "pattern": lambda: f"matching {shown(value, 60)}",
    }
    describe = words.get(str(error.validator))
    return describe() if describe else f"valid ({error.validator})"


def _violation(schema: dict[str, Any], error: ValidationError, message: str) -> InvalidObject:
    """A 400 whose class is the innermost ``x-rucio-error`` on the way to the violated keyword (else InvalidObject)."""
    node: Any = schema
    found: Any = None
    for step in error.absolute_schema_path:
        if isinstance(node, dict):
            found = node.get(ERROR_KEYWORD, found)
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            break
    violation = InvalidObject(message)
    if isinstance(found, str):
        violation.rucio_name = found
    return violation


def check_body(schema: dict[str, Any], body: Any) -> None:
    """Raise Rucio's error for the first violation of ``schema`` by ``body`` (none: return)."""
    try:
        _compiled(schema)[2](body)
        return
    except fastjsonschema.JsonSchemaException:
        pass  # jsonschema decides, and says why
    error = next(
        iter(
            sorted(validator(schema).iter_errors(body), key=lambda e: (len(e.path), list(map(str, e.path))))
        ),
        None,
    )
    if error is None:
        return
    if error.validator == "required" and not error.path:
        missing = [name for name in error.validator_value if not isinstance(body, dict) or name not in body]
        raise MissingParameter(f"'{missing[0] if missing else error.validator_value[0]}' not defined")
    where = _where(error.absolute_path)
    if error.validator == "required":
        message = f"Problem validating {where}: it lacks a required key of {shown(error.validator_value, 80)}"
    else:
        message = f"Problem validating {where}: must be {_expected(error)}, not {_value(error.instance)}"
    raise _violation(validator(schema).schema, error, message)

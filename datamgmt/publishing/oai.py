"""OAI-PMH 2.0 protocol rules that do not depend on HTTP: verbs and their arguments, errors,
UTC datestamps, oai-identifiers and the metadata formats on offer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

from datamgmt.publishing import datacite, dublincore
from datamgmt.publishing.records import ShareRecord
from datamgmt.publishing.xmlutil import (
    DATACITE,
    DATACITE_SCHEMA,
    OAI_DATACITE,
    OAI_DATACITE_SCHEMA,
    OAI_DC,
    OAI_DC_SCHEMA,
)

#: The eight error codes of [3.6].
ERROR_CODES = frozenset(
    {
        "badArgument",
        "badResumptionToken",
        "badVerb",
        "cannotDisseminateFormat",
        "idDoesNotExist",
        "noRecordsMatch",
        "noMetadataFormats",
        "noSetHierarchy",
    }
)
GRANULARITY = "YYYY-MM-DDThh:mm:ssZ"
_SET_SPEC = re.compile(r"[A-Za-z0-9\-_.!~*'()]+(:[A-Za-z0-9\-_.!~*'()]+)*")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_SECONDS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
#: Characters an oai-identifier local part may hold besides alphanumerics (oai-identifier.xsd);
#: the scope is quoted without ``:`` so the first colon after it separates scope from name.
_LOCAL_SAFE = "-_.!~*'();/?:@&=+$,"
_SCOPE_SAFE = _LOCAL_SAFE.replace(":", "")


class OAIError(Exception):
    """A protocol error, answered as ``<error code="…">`` inside an HTTP 200 response."""

    def __init__(self, code: str, message: str) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"{code!r} is not an OAI-PMH error code")
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def echoes_arguments(self) -> bool:
        """badVerb and badArgument answers carry no attributes on ``<request>`` [3.2]."""
        return self.code not in ("badVerb", "badArgument")


@dataclass(frozen=True, slots=True)
class VerbRule:
    """The arguments a verb takes [4]: required, optional and the exclusive one."""

    required: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()
    exclusive: str | None = None

    @property
    def allowed(self) -> frozenset[str]:
        return self.required | self.optional | ({self.exclusive} if self.exclusive else set())


_LIST_RULE = VerbRule(frozenset({"metadataPrefix"}), frozenset({"from", "until", "set"}), "resumptionToken")
VERBS: dict[str, VerbRule] = {
    "Identify": VerbRule(),
    "ListMetadataFormats": VerbRule(optional=frozenset({"identifier"})),
    "ListSets": VerbRule(exclusive="resumptionToken"),
    "GetRecord": VerbRule(required=frozenset({"identifier", "metadataPrefix"})),
    "ListIdentifiers": _LIST_RULE,
    "ListRecords": _LIST_RULE,
}


def parse_arguments(pairs: list[tuple[str, str]]) -> tuple[str, dict[str, str]]:
    """Check a request's key=value pairs against [3.1] and [4]; return the verb and its arguments.

    Raises badVerb for a missing, unknown or repeated verb, and badArgument for any other
    key that is repeated, empty, unknown to the verb, combined with the exclusive one, or
    required and missing.
    """
    verbs = [value for key, value in pairs if key == "verb"]
    if len(verbs) != 1 or verbs[0] not in VERBS:
        raise OAIError("badVerb", "The verb is missing, repeated or not an OAI-PMH verb")
    verb = verbs[0]
    rule = VERBS[verb]
    arguments: dict[str, str] = {}
    for key, value in pairs:
        if key == "verb":
            continue
        if key not in rule.allowed:
            raise OAIError("badArgument", f"{verb} does not take the argument {key!r}")
        if key in arguments:
            raise OAIError("badArgument", f"The argument {key!r} is repeated")
        if not value:
            raise OAIError("badArgument", f"The argument {key!r} has no value")
        arguments[key] = value
    if rule.exclusive and rule.exclusive in arguments:
        if len(arguments) > 1:
            raise OAIError("badArgument", f"{rule.exclusive} is exclusive: no other argument may be given")
    else:
        missing = sorted(rule.required - arguments.keys())
        if missing:
            raise OAIError("badArgument", f"{verb} requires {', '.join(missing)}")
    if "set" in arguments and not _SET_SPEC.fullmatch(arguments["set"]):
        raise OAIError("badArgument", f"{arguments['set']!r} is not a setSpec")
    return verb, arguments


@dataclass(frozen=True, slots=True)
class DateRange:
    """Inclusive datestamp bounds of a selective harvest, already widened to their granularity."""

    from_: datetime | None = None
    until: datetime | None = None


def _parse_utc(name: str, value: str) -> tuple[datetime, timedelta]:
    """A UTCdatetime argument and the span its granularity covers (a day or a second)."""
    try:
        if _DAY.fullmatch(value):
            return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC), timedelta(days=1)
        if _SECONDS.fullmatch(value):
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC), timedelta(seconds=1)
    except ValueError:
        pass
    raise OAIError("badArgument", f"{name}={value!r} is not a UTC date (YYYY-MM-DD or {GRANULARITY})")


def parse_date_range(from_: str | None, until: str | None) -> DateRange:
    """Validate from/until [3.3]: both forms accepted, same granularity, from <= until.

    ``until`` covers its whole day or second: datestamps are stored with sub-second
    precision but shown truncated, so ``until=…T12:00:00Z`` must include 12:00:00.5.
    """
    start = _parse_utc("from", from_) if from_ else None
    end = _parse_utc("until", until) if until else None
    if start and end:
        if start[1] != end[1]:
            raise OAIError("badArgument", "from and until must have the same granularity")
        if start[0] > end[0]:
            raise OAIError("badArgument", "from is later than until")
    return DateRange(
        start[0] if start else None,
        end[0] + end[1] - timedelta(microseconds=1) if end else None,
    )


def format_datestamp(moment: datetime) -> str:
    """A UTCdatetime at the repository's (seconds) granularity."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_identifier(repository_identifier: str, scope: str, name: str) -> str:
    """``oai:<repository_identifier>:<scope>:<name>``, percent-encoding what oai-identifier forbids."""
    return f"oai:{repository_identifier}:{quote(scope, safe=_SCOPE_SAFE)}:{quote(name, safe=_LOCAL_SAFE)}"


def parse_identifier(repository_identifier: str, identifier: str) -> tuple[str, str] | None:
    """The (scope, name) an identifier of this repository names, or None if it is not one of ours."""
    prefix = f"oai:{repository_identifier}:"
    if not identifier.startswith(prefix):
        return None
    scope, colon, name = identifier[len(prefix) :].partition(":")
    if not (scope and colon and name):
        return None
    return unquote(scope), unquote(name)


@dataclass(frozen=True, slots=True)
class MetadataFormat:
    """A metadataPrefix, its schema and namespace, and the crosswalk that renders it as XML text."""

    prefix: str
    schema: str
    namespace: str
    render: Callable[[ShareRecord], str]


METADATA_FORMATS: Mapping[str, MetadataFormat] = {
    fmt.prefix: fmt
    for fmt in (
        MetadataFormat("oai_dc", OAI_DC_SCHEMA, OAI_DC, dublincore.oai_dc_xml),
        MetadataFormat("datacite", DATACITE_SCHEMA, DATACITE, datacite.resource_xml),
        MetadataFormat("oai_datacite", OAI_DATACITE_SCHEMA, OAI_DATACITE, datacite.oai_datacite_xml),
    )
}


def metadata_format(prefix: str) -> MetadataFormat:
    """The format named by metadataPrefix, or cannotDisseminateFormat."""
    try:
        return METADATA_FORMATS[prefix]
    except KeyError:
        raise OAIError(
            "cannotDisseminateFormat", f"The metadata format {prefix!r} is not supported"
        ) from None

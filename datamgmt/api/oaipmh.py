"""The OAI-PMH 2.0 repository at ``/oai_pmh``: HTTP in, streamed XML out.

Every protocol question is decided before the first byte is sent (errors, the page of
records, the next token), then the response is serialized record by record so a page
never exists as one document in memory: ``lxml.etree.xmlfile`` writes the envelope, and
records arrive as XML text from the crosswalks (building a tree per record cost more than
the rest of a harvest).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, request
from lxml import etree

from datamgmt.config import get_config
from datamgmt.exceptions import ServiceUnavailable
from datamgmt.publishing.oai import (
    GRANULARITY,
    METADATA_FORMATS,
    DateRange,
    MetadataFormat,
    OAIError,
    format_datestamp,
    make_identifier,
    metadata_format,
    parse_arguments,
    parse_date_range,
    parse_identifier,
)
from datamgmt.publishing.records import ShareRecord
from datamgmt.publishing.repository import Repository, RepositoryInfo
from datamgmt.publishing.tokens import ResumptionState, TokenCodec
from datamgmt.publishing.xmlutil import (
    OAI,
    OAI_IDENTIFIER,
    OAI_IDENTIFIER_SCHEMA,
    OAI_SCHEMA,
    XSI,
    XSI_SCHEMA_LOCATION,
    escape_text,
    schema_location,
    text_element,
    xml_text,
)

DEFAULT_PAGE_SIZE = 100
DEFAULT_TOKEN_LIFETIME = timedelta(hours=1)
_CONTENT_TYPE = "text/xml; charset=utf-8"
#: Writes the verb element's children: through ``xmlfile``, or by yielding serialized XML
#: text that follows what it wrote; every yield is a chunk worth sending ("" adds nothing).
BodyWriter = Callable[[etree.xmlfile], Iterator[str]]
_RECORD_START = f'<record xmlns="{OAI}">'
_HEADER_START = f'<header xmlns="{OAI}"'
_DELETED = ' status="deleted"'


def _oai(tag: str) -> str:
    return f"{{{OAI}}}{tag}"


def _element(tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    element = etree.Element(_oai(tag), attrs, nsmap={None: OAI})
    if text is not None:
        element.text = xml_text(text)
    return element


def _sub(parent: etree._Element, tag: str, text: str) -> None:
    etree.SubElement(parent, _oai(tag)).text = xml_text(text)


class _Chunks:
    """The file ``xmlfile`` writes into; drained after each record to stream the response."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self._parts.append(data)

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


@dataclass(frozen=True, slots=True)
class _Context:
    """What every verb handler needs about the request being answered.

    ``info`` is the repository's fixed facts (name, identifier, base URL); its earliest
    datestamp is stale, so Identify asks the repository again.
    """

    info: RepositoryInfo
    base_url: str
    now: datetime


class OAIPMHEngine:
    """Answers the six verbs over a :class:`~datamgmt.publishing.repository.Repository`."""

    def __init__(
        self,
        repository: Repository,
        secret: bytes,
        page_size: int = DEFAULT_PAGE_SIZE,
        token_lifetime: timedelta = DEFAULT_TOKEN_LIFETIME,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be positive")
        self.repository = repository
        self.page_size = page_size
        self.token_lifetime = token_lifetime
        self.clock = clock
        self._tokens = TokenCodec(secret)
        self._info: RepositoryInfo | None = None

    # --- entry point -------------------------------------------------------------------------
    def respond(self, pairs: list[tuple[str, str]], base_url: str) -> Iterator[bytes]:
        """The response body for a request's key=value pairs, as a stream of UTF-8 chunks."""
        # The fixed facts are read once: asking the repository costs a query (the earliest
        # datestamp) that only Identify needs, and would slow every page of a harvest.
        if self._info is None:
            self._info = self.repository.identify_info()
        info = self._info
        ctx = _Context(info, info.base_url or base_url, self.clock())
        echoed: dict[str, str] = {}
        try:
            verb, arguments = parse_arguments(pairs)
            echoed = {"verb": verb, **arguments}
            handler = getattr(self, f"_{verb}")
            verb_tag, body = handler(arguments, ctx)
        except OAIError as error:
            attrs = echoed if error.echoes_arguments else {}
            return self._envelope(ctx, attrs, None, self._error_body(error))
        return self._envelope(ctx, echoed, verb_tag, body)

    @staticmethod
    def _envelope(
        ctx: _Context, attrs: dict[str, str], verb_tag: str | None, body: BodyWriter
    ) -> Iterator[bytes]:
        out = _Chunks()
        with etree.xmlfile(out, encoding="utf-8") as xf:
            xf.write_declaration()
            root_attrs = {XSI_SCHEMA_LOCATION: schema_location(OAI, OAI_SCHEMA)}
            with xf.element(_oai("OAI-PMH"), root_attrs, nsmap={None: OAI, "xsi": XSI}):
                xf.write(_element("responseDate", format_datestamp(ctx.now)))
                xf.write(_element("request", ctx.base_url, **attrs))
                with xf.element(_oai(verb_tag)) if verb_tag else nullcontext():
                    for text in body(xf):
                        xf.flush()
                        yield out.drain() + text.encode()
        yield out.drain()

    @staticmethod
    def _error_body(error: OAIError) -> BodyWriter:
        def write(xf: etree.xmlfile) -> Iterator[str]:
            xf.write(_element("error", error.message, code=error.code))
            yield ""

        return write

    # --- verbs -------------------------------------------------------------------------------
    def _Identify(self, arguments: dict[str, str], ctx: _Context) -> tuple[str, BodyWriter]:
        info = self.repository.identify_info()

        def write(xf: etree.xmlfile) -> Iterator[str]:
            xf.write(_element("repositoryName", info.repository_name))
            xf.write(_element("baseURL", ctx.base_url))
            xf.write(_element("protocolVersion", "2.0"))
            for email in info.admin_emails:
                xf.write(_element("adminEmail", email))
            xf.write(_element("earliestDatestamp", format_datestamp(info.earliest_datestamp)))
            xf.write(_element("deletedRecord", "persistent"))
            xf.write(_element("granularity", GRANULARITY))
            description = _element("description")
            ident = etree.SubElement(
                description, f"{{{OAI_IDENTIFIER}}}oai-identifier", nsmap={None: OAI_IDENTIFIER}
            )
            ident.set(XSI_SCHEMA_LOCATION, schema_location(OAI_IDENTIFIER, OAI_IDENTIFIER_SCHEMA))
            for tag, text in (
                ("scheme", "oai"),
                ("repositoryIdentifier", info.repository_identifier),
                ("delimiter", ":"),
                ("sampleIdentifier", make_identifier(info.repository_identifier, "user.jdoe", "dataset1")),
            ):
                etree.SubElement(ident, f"{{{OAI_IDENTIFIER}}}{tag}").text = text
            xf.write(description)
            yield ""

        return "Identify", write

    def _ListMetadataFormats(self, arguments: dict[str, str], ctx: _Context) -> tuple[str, BodyWriter]:
        if "identifier" in arguments:
            record = self._lookup(arguments["identifier"], ctx.info)
            if record.deleted:
                raise OAIError("noMetadataFormats", "The item is deleted and has no metadata")

        def write(xf: etree.xmlfile) -> Iterator[str]:
            for fmt in METADATA_FORMATS.values():
                element = _element("metadataFormat")
                _sub(element, "metadataPrefix", fmt.prefix)
                _sub(element, "schema", fmt.schema)
                _sub(element, "metadataNamespace", fmt.namespace)
                xf.write(element)
            yield ""

        return "ListMetadataFormats", write

    def _ListSets(self, arguments: dict[str, str], ctx: _Context) -> tuple[str, BodyWriter]:
        if "resumptionToken" in arguments:
            state = self._tokens.decode(arguments["resumptionToken"], "ListSets", ctx.now)
            after, cursor, total = state.after[0], state.cursor, state.complete_list_size
        else:
            after, cursor, total = None, 0, None
        sets = self.repository.list_sets()
        if not sets:
            raise OAIError("noSetHierarchy", "This repository has no sets")
        remaining = [item for item in sets if after is None or item.spec > after]
        if not remaining:
            raise OAIError("badResumptionToken", "The resumption token points past the list of sets")
        page = remaining[: self.page_size]
        more = len(remaining) > self.page_size
        total = total if total is not None else len(sets)
        token = self._next_state(
            "ListSets", None, DateRange(), None, (page[-1].spec,), cursor, len(page), total, ctx.now
        )

        def write(xf: etree.xmlfile) -> Iterator[str]:
            for item in page:
                element = _element("set")
                _sub(element, "setSpec", item.spec)
                _sub(element, "setName", item.name)
                xf.write(element)
            self._write_token(xf, token if more else None, cursor, total, resumed=cursor > 0)
            yield ""

        return "ListSets", write

    def _GetRecord(self, arguments: dict[str, str], ctx: _Context) -> tuple[str, BodyWriter]:
        fmt = metadata_format(arguments["metadataPrefix"])
        record = self._lookup(arguments["identifier"], ctx.info)

        def write(xf: etree.xmlfile) -> Iterator[str]:
            yield self._record(record, fmt, ctx.info)

        return "GetRecord", write

    def _ListIdentifiers(self, arguments: dict[str, str], ctx: _Context) -> tuple[str, BodyWriter]:
        return self._list("ListIdentifiers", arguments, ctx)

    def _ListRecords(self, arguments: dict[str, str], ctx: _Context) -> tuple[str, BodyWriter]:
        return self._list("ListRecords", arguments, ctx)

    # --- shared machinery --------------------------------------------------------------------
    def _lookup(self, identifier: str, info: RepositoryInfo) -> ShareRecord:
        did = parse_identifier(info.repository_identifier, identifier)
        record = self.repository.get_record(*did) if did else None
        if record is None:
            raise OAIError("idDoesNotExist", f"{identifier!r} is not an identifier of this repository")
        return record

    def _list(self, verb: str, arguments: dict[str, str], ctx: _Context) -> tuple[str, BodyWriter]:
        if "resumptionToken" in arguments:
            state = self._tokens.decode(arguments["resumptionToken"], verb, ctx.now)
            prefix, dates, set_spec = (
                state.metadata_prefix or "",
                DateRange(state.from_, state.until),
                state.set_spec,
            )
            try:
                after = (datetime.fromisoformat(state.after[0]), state.after[1])
            except (ValueError, IndexError) as exc:
                raise OAIError("badResumptionToken", "The resumption token is not valid") from exc
            cursor, total = state.cursor, state.complete_list_size
        else:
            prefix, set_spec = arguments["metadataPrefix"], arguments.get("set")
            dates = parse_date_range(arguments.get("from"), arguments.get("until"))
            after, cursor, total = None, 0, None
        fmt = metadata_format(prefix)
        if set_spec is not None and after is None and not self.repository.list_sets():
            raise OAIError("noSetHierarchy", "This repository has no sets")
        records = self.repository.list_records(dates.from_, dates.until, set_spec, after, self.page_size + 1)
        if not records:
            raise OAIError("noRecordsMatch", "No records match the request")
        more = len(records) > self.page_size
        page = records[: self.page_size]
        if total is None:
            total = (
                len(page) if not more else self.repository.count_records(dates.from_, dates.until, set_spec)
            )
        last = page[-1]
        token = self._next_state(
            verb,
            prefix,
            dates,
            set_spec,
            (last.datestamp.isoformat(), last.share_id),
            cursor,
            len(page),
            total,
            ctx.now,
        )
        headers_only = verb == "ListIdentifiers"
        info = ctx.info

        def write(xf: etree.xmlfile) -> Iterator[str]:
            for record in page:
                yield (
                    self._header(record, info, _HEADER_START)
                    if headers_only
                    else self._record(record, fmt, info)
                )
            self._write_token(xf, token if more else None, cursor, total, resumed=cursor > 0)
            yield ""

        return verb, write

    def _next_state(
        self,
        verb: str,
        prefix: str | None,
        dates: DateRange,
        set_spec: str | None,
        after: tuple[str, ...],
        cursor: int,
        sent: int,
        total: int,
        now: datetime,
    ) -> ResumptionState:
        return ResumptionState(
            verb,
            prefix,
            dates.from_,
            dates.until,
            set_spec,
            after,
            cursor + sent,
            total,
            now + self.token_lifetime,
        )

    def _write_token(
        self, xf: etree.xmlfile, state: ResumptionState | None, cursor: int, total: int, resumed: bool
    ) -> None:
        """The next token; an empty one on the last page of a split list, none for a one-page list."""
        if state is not None:
            xf.write(
                _element(
                    "resumptionToken",
                    self._tokens.encode(state),
                    expirationDate=format_datestamp(state.expires),
                    completeListSize=str(total),
                    cursor=str(cursor),
                )
            )
        elif resumed:
            xf.write(_element("resumptionToken", completeListSize=str(total), cursor=str(cursor)))

    @staticmethod
    def _header(record: ShareRecord, info: RepositoryInfo, start: str) -> str:
        """The ``<header>`` of a record; ``start`` is its open start tag, with or without ``xmlns``."""
        identifier = make_identifier(info.repository_identifier, record.scope, record.name)
        sets = "".join(f"<setSpec>{escape_text(spec)}</setSpec>" for spec in record.sets)
        return (
            f"{start}{_DELETED if record.deleted else ''}>{text_element('identifier', identifier)}"
            f"<datestamp>{format_datestamp(record.datestamp)}</datestamp>{sets}</header>"
        )

    def _record(self, record: ShareRecord, fmt: MetadataFormat, info: RepositoryInfo) -> str:
        header = self._header(record, info, "<header")
        if record.deleted:
            return f"{_RECORD_START}{header}</record>"
        return f"{_RECORD_START}{header}<metadata>{fmt.render(record)}</metadata></record>"


def make_oaipmh_blueprint(
    repository: Repository,
    *,
    secret: bytes,
    page_size: int = DEFAULT_PAGE_SIZE,
    token_lifetime: timedelta = DEFAULT_TOKEN_LIFETIME,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Blueprint:
    """The ``/oai_pmh`` blueprint over ``repository``.

    ``secret`` signs resumption tokens and must be the same for every server process
    behind one base URL; ``page_size`` is ``[oaipmh] page_size``.
    """
    engine = OAIPMHEngine(repository, secret, page_size, token_lifetime, clock)
    blueprint = Blueprint("oaipmh", __name__, url_prefix="/oai_pmh")

    @blueprint.route("", methods=["GET", "POST"])
    def oai_pmh() -> Response:
        if request.method == "POST":
            if request.mimetype != "application/x-www-form-urlencoded":
                return Response("OAI-PMH POST requests must be application/x-www-form-urlencoded\n", 415)
            pairs = list(request.form.items(multi=True))
        else:
            pairs = list(request.args.items(multi=True))
        # The baseURL is the configured one, never built from the request's Host header,
        # which a client chooses (and a cache could keep for everyone).
        configured = get_config().get("api", "base_url")
        if not configured:
            raise ServiceUnavailable(
                "OAI-PMH needs [api] base_url; the baseURL never comes from the Host header"
            )
        return Response(
            engine.respond(pairs, f"{configured.rstrip('/')}/oai_pmh"), content_type=_CONTENT_TYPE
        )

    return blueprint

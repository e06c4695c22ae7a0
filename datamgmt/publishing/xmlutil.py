"""Namespaces, schema locations and text hygiene shared by the XML the repository writes.

The payloads harvested in bulk are written as text (:func:`escape_text`, :func:`text_element`)
rather than built as lxml trees: per-record tree building was most of ListRecords' cost.
The escaping matches what libxml2 writes for element text, so the bytes are the same.
"""

from __future__ import annotations

import re

XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSI_SCHEMA_LOCATION = f"{{{XSI}}}schemaLocation"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

OAI = "http://www.openarchives.org/OAI/2.0/"
OAI_SCHEMA = "http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd"
OAI_IDENTIFIER = "http://www.openarchives.org/OAI/2.0/oai-identifier"
OAI_IDENTIFIER_SCHEMA = "http://www.openarchives.org/OAI/2.0/oai-identifier.xsd"

OAI_DC = "http://www.openarchives.org/OAI/2.0/oai_dc/"
OAI_DC_SCHEMA = "http://www.openarchives.org/OAI/2.0/oai_dc.xsd"
DC = "http://purl.org/dc/elements/1.1/"

DATACITE = "http://datacite.org/schema/kernel-4"
DATACITE_SCHEMA = "http://schema.datacite.org/meta/kernel-4/metadata.xsd"
OAI_DATACITE = "http://schema.datacite.org/oai/oai-1.1/"
OAI_DATACITE_SCHEMA = "http://schema.datacite.org/oai/oai-1.1/oai.xsd"


def schema_location(namespace: str, schema: str) -> str:
    """The ``xsi:schemaLocation`` value that OAI-PMH requires on every payload root."""
    return f"{namespace} {schema}"


#: Characters XML 1.0 cannot carry at all (C0 controls other than tab/LF/CR, surrogates, U+FFFE/F).
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: object) -> str:
    """A value as element text: lxml escapes markup, this drops what XML cannot encode at all."""
    return _NOT_XML.sub("", str(value))


def escape_text(value: object) -> str:
    """A value serialized as element text, byte for byte as libxml2 writes it in UTF-8.

    Printable ASCII, the usual case, needs only markup escaped; anything else also loses
    what XML cannot carry, and a carriage return becomes ``&#13;`` so parsers keep it.
    """
    text = str(value)
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if text.isascii() and text.isprintable():
        return escaped
    return xml_text(escaped).replace("\r", "&#13;")


def text_element(tag: str, value: object) -> str:
    """``<tag>value</tag>`` with the value escaped; ``tag`` is written as given (prefix included)."""
    return f"<{tag}>{escape_text(value)}</{tag}>"

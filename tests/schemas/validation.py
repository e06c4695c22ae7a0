"""Offline XML Schema validation of OAI-PMH responses and their payloads.

One combined schema imports OAI-PMH.xsd and every payload schema, so the
``processContents="strict"`` wildcards of OAI-PMH.xsd validate each payload against its
own schema in the same pass.  Nothing is fetched from the network.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

OAI_SCHEMAS = Path(__file__).resolve().parent / "oai"

_IMPORTS = {
    "http://www.openarchives.org/OAI/2.0/": "OAI-PMH.xsd",
    "http://www.openarchives.org/OAI/2.0/oai_dc/": "oai_dc.xsd",
    "http://www.openarchives.org/OAI/2.0/oai-identifier": "oai-identifier.xsd",
    "http://datacite.org/schema/kernel-4": "datacite/kernel-4/metadata.xsd",
    "http://schema.datacite.org/oai/oai-1.1/": "datacite/oai-1.1/oai.xsd",
}


class _NoNetwork(etree.Resolver):
    def resolve(self, url, pubid, context):  # noqa: ANN001 - lxml's resolver signature
        if url.startswith(("http:", "https:")):
            raise AssertionError(f"schema validation tried to fetch {url}")
        return None


@cache
def _schema(namespaces: tuple[str, ...]) -> etree.XMLSchema:
    imports = "".join(
        f'<xs:import namespace="{namespace}" schemaLocation="{(OAI_SCHEMAS / _IMPORTS[namespace]).as_uri()}"/>'
        for namespace in namespaces
    )
    text = f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">{imports}</xs:schema>'
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(_NoNetwork())
    return etree.XMLSchema(etree.fromstring(text, parser, base_url=OAI_SCHEMAS.as_uri() + "/"))


def validate(
    document: bytes | etree._Element, namespaces: tuple[str, ...] = tuple(_IMPORTS)
) -> etree._Element:
    """Parse (if needed) and validate; raise AssertionError with the schema's complaints."""
    root = etree.fromstring(document) if isinstance(document, bytes) else document
    schema = _schema(namespaces)
    if not schema.validate(root):
        errors = "\n".join(str(error) for error in schema.error_log)
        raise AssertionError(
            f"XML does not validate:\n{errors}\n{etree.tostring(root, pretty_print=True).decode()}"
        )
    return root


def validate_payload(element: etree._Element) -> etree._Element:
    """Validate a payload alone against the schema of its own namespace (and what that imports)."""
    return validate(element, (etree.QName(element).namespace,))

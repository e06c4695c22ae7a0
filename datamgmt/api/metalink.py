"""Replica listings as Metalink 4 (RFC 5854), the form ``rucio download`` asks for.

Rucio's client reads each ``<file>``'s ``<identity>`` (scope:name), its ``<hash>``es, ``<size>``
and one ``<url>`` per PFN whose ``location`` is the RSE, so this writes exactly those, with
every value escaped: a DID name or PFN may hold any character XML gives meaning to.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import escape, quoteattr

METALINK = "application/metalink4+xml"
_HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n<metalink xmlns="urn:ietf:params:xml:ns:metalink">\n'
_FOOTER = "</metalink>\n"


def metalink(entries: Iterator[dict[str, Any]]) -> Iterator[str]:
    """The document for listing entries (``PFNBuilder.describe`` output), one ``<file>`` per chunk."""
    yield _HEADER
    for entry in entries:
        yield _file(entry)
    yield _FOOTER


def _file(entry: dict[str, Any]) -> str:
    did = f"{entry['scope']}:{entry['name']}"
    parts = [f" <file name={quoteattr(entry['name'])}>\n"]
    parents = entry.get("parents") or []
    if parents:
        parts.append(
            "  <parents>\n" + "".join(f"   <did>{escape(p)}</did>\n" for p in parents) + "  </parents>\n"
        )
    parts.append(f"  <identity>{escape(did)}</identity>\n")
    for algorithm in ("adler32", "md5"):
        if entry.get(algorithm):
            parts.append(f"  <hash type={quoteattr(algorithm)}>{escape(entry[algorithm])}</hash>\n")
    parts.append(f"  <size>{int(entry['bytes'] or 0)}</size>\n")
    parts.append(f"  <glfn name={quoteattr('/rucio/' + did)}></glfn>\n")
    for pfn, replica in entry["pfns"].items():
        attributes = (
            f"location={quoteattr(replica['rse'])} domain={quoteattr(replica['domain'])}"
            f' priority="{int(replica["priority"])}"'
            f' client_extract="{str(bool(replica["client_extract"])).lower()}"'
        )
        parts.append(f"  <url {attributes}>{escape(pfn)}</url>\n")
    parts.append(" </file>\n")
    return "".join(parts)

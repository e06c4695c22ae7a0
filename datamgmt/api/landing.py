"""The HTML landing page of a PID: the citation in common formats, the files and how to download
them, and schema.org JSON-LD for search engines.

The page stays inside the API's strict Content-Security-Policy: its one ``<style>`` block is
allowed by its SHA-256 hash (nothing else may style or load), and the JSON-LD is a data block,
which browsers never execute; its JSON escapes ``<``, ``>`` and ``&`` so no value can close the
element.  Every other value is escaped by the template.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from flask import render_template_string
from markupsafe import Markup

from datamgmt.api.headers import CONTENT_SECURITY_POLICY

_STYLE = (
    "body{margin:0 auto;max-width:960px;padding:16px;font:16px/1.5 system-ui,sans-serif;color:#1a1a1a}"
    "h1{font-size:1.6rem;overflow-wrap:anywhere}h2{font-size:1.15rem;margin-top:1.6rem}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px}dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}"
    "table{border-collapse:collapse;width:100%;display:block;overflow-x:auto}"
    "th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #d0d0d0;overflow-wrap:anywhere}"
    "pre{background:#f3f3f3;padding:8px;overflow-x:auto;white-space:pre-wrap}"
    ".withdrawn{border:2px solid #a30000;color:#a30000;padding:8px}a{color:#0b5394}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
#: The API's policy, plus this page's own style block.
LANDING_CSP = CONTENT_SECURITY_POLICY.replace(
    "default-src 'none';", f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}';"
)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ share.title }}</title>
<style>{{ style }}</style>
{% if not share.withdrawn %}<script type="application/ld+json">{{ json_ld }}</script>{% endif %}
</head>
<body><main>
{% if share.withdrawn %}<p class="withdrawn"><strong>This publication was withdrawn on {{ share.withdrawn_at }}.</strong></p>{% endif %}
<h1>{{ share.title }}</h1>
<p>{{ share.creators | join("; ") }}</p>
<dl>
<dt>Identifier</dt><dd><a href="{{ identifier }}">{{ share.pid }}</a> ({{ share.pid_type }})</dd>
<dt>Data identifier</dt><dd>{{ share.scope }}:{{ share.name }} ({{ share.did_type }})</dd>
{% if share.publisher %}<dt>Publisher</dt><dd>{{ share.publisher }}</dd>{% endif %}
<dt>Year</dt><dd>{{ share.publication_year }}</dd>
{% if share.date %}<dt>Date</dt><dd>{{ share.date }}</dd>{% endif %}
{% if share.rights %}<dt>Rights</dt><dd>{{ share.rights }}</dd>{% endif %}
{% if share.subjects %}<dt>Subjects</dt><dd>{{ share.subjects | join(", ") }}</dd>{% endif %}
</dl>
{% if share.description %}<p>{{ share.description }}</p>{% endif %}
<h2 id="cite">Cite as</h2>
<p>{{ citation.text }}</p>
<h3>BibTeX</h3><pre>{{ citation.bibtex }}</pre>
<h3>RIS</h3><pre>{{ citation.ris }}</pre>
{% if not share.withdrawn %}
<h2 id="download">Download</h2>
<p>With this service's command-line client, or with Rucio's:</p>
<pre>datamgmt download {{ share.scope }}:{{ share.name }}
rucio download {{ share.scope }}:{{ share.name }}</pre>
<h2 id="files">Files ({{ share.files_total }}, {{ share.bytes_total }} bytes)</h2>
{% if share.files_total > share.files | length %}<p>The first {{ share.files | length }} are listed.</p>{% endif %}
<table>
<thead><tr><th scope="col">File</th><th scope="col">Bytes</th><th scope="col">Adler-32</th><th scope="col">Replicas</th></tr></thead>
<tbody>
{% for file in share.files %}<tr><td>{{ file.scope }}:{{ file.name }}</td><td>{{ file.bytes }}</td>
<td>{{ file.adler32 or "" }}</td>
<td>{% for replica in file.replicas %}{{ replica.rse }} ({{ replica.state }}){% if not loop.last %}, {% endif %}{% endfor %}</td></tr>
{% endfor %}</tbody></table>
{% endif %}
</main></body></html>
"""


def pid_url(share: dict[str, Any]) -> str:
    """The PID as a resolvable URL: doi.org, hdl.handle.net, or our landing page for a local PID."""
    if share["pid_type"] == "doi":
        return f"https://doi.org/{share['pid']}"
    if share["pid_type"] == "handle":
        return f"https://hdl.handle.net/{share['pid']}"
    return str(share["landing_url"])


def _bibtex_text(value: str) -> str:
    """BibTeX braces balanced and its special characters escaped, so a value stays one field."""
    for char in "\\{}":
        value = value.replace(char, "")
    for char in "&%$#_":
        value = value.replace(char, "\\" + char)
    return value


def citations(share: dict[str, Any]) -> dict[str, str]:
    """The citation as DataCite recommends it in text, and as BibTeX and RIS records."""
    creators, year, title = share["creators"] or ["Anonymous"], share["publication_year"], share["title"]
    publisher, url = share["publisher"] or "", pid_url(share)
    text = f"{'; '.join(creators)} ({year}). {title}. {publisher + '. ' if publisher else ''}{url}"
    key = "".join(ch for ch in f"{creators[0].split(',')[0]}{year}" if ch.isalnum()) or "dataset"
    doi = f"  doi = {{{_bibtex_text(share['pid'])}}},\n" if share["pid_type"] == "doi" else ""
    bibtex = (
        f"@misc{{{key},\n  author = {{{_bibtex_text(' and '.join(creators))}}},\n  title = {{{_bibtex_text(title)}}},\n"
        f"  publisher = {{{_bibtex_text(publisher)}}},\n  year = {{{year}}},\n{doi}  url = {{{url}}}\n}}"
    )
    ris_lines = ["TY  - DATA", *(f"AU  - {name}" for name in creators), f"TI  - {title}", f"PY  - {year}"]
    ris_lines += [f"PB  - {publisher}"] if publisher else []
    ris_lines += [f"DO  - {share['pid']}"] if share["pid_type"] == "doi" else []
    ris_lines += [f"UR  - {url}", "ER  - "]
    # A value's line breaks would start new RIS tags: each value is kept on its line.
    ris = "\n".join(" ".join(line.split("\n")) for line in ris_lines)
    return {"text": text, "bibtex": bibtex, "ris": ris}


def json_ld(share: dict[str, Any]) -> dict[str, Any]:
    """schema.org's Dataset, as Google Dataset Search and other harvesters read it."""
    url = pid_url(share)
    document: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "Dataset",
        "@id": url,
        "identifier": url,
        "url": share["landing_url"],
        "name": share["title"],
        "description": share["description"] or share["title"],
        "creator": [{"@type": "Person", "name": name} for name in share["creators"]],
        "datePublished": share["date"] or share["publication_year"],
        "contentSize": f"{share['bytes_total']} B",
        "distribution": [
            {
                "@type": "DataDownload",
                "name": f"{entry['scope']}:{entry['name']}",
                "contentSize": f"{entry['bytes']} B",
            }
            for entry in share["files"]
        ],
    }
    if share["publisher"]:
        document["publisher"] = {"@type": "Organization", "name": share["publisher"]}
    if share["subjects"]:
        document["keywords"] = share["subjects"]
    if share["rights"]:
        document["license"] = share["rights"]
    return document


def _script_json(value: Any) -> Markup:
    """JSON that cannot end its ``<script>`` element or open a comment inside it."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def render_landing(share: dict[str, Any]) -> str:
    return render_template_string(
        _PAGE,
        share=share,
        style=Markup(_STYLE),
        json_ld=_script_json(json_ld(share)),
        citation=citations(share),
        identifier=pid_url(share),
    )

"""Regenerate ``rucio41_routes.json`` from the real Rucio server's Flask application.

Run with the interpreter of a Rucio 41 server install (``pip install "rucio==41.*"`` in a venv
with a ``rucio.cfg``), so that the list is Rucio's own, not a transcription::

    RUCIO_CONFIG=~/.rucio-peer/data/server/etc/rucio.cfg \\
        ~/.rucio-peer/venv-rucio/bin/python tests/rucio_routes/generate.py

Each entry is one method on one rule; HEAD and OPTIONS are Flask's automatic ones and left out.
"""

from __future__ import annotations

import json
from pathlib import Path

OUTPUT = Path(__file__).with_name("rucio41_routes.json")


def main() -> None:
    from rucio import version
    from rucio.web.rest.flaskapi.v1.main import application

    routes = sorted(
        {
            (rule.rule, method)
            for rule in application.url_map.iter_rules()
            if rule.endpoint != "static"
            for method in rule.methods - {"HEAD", "OPTIONS"}
        }
    )
    document = {
        "rucio_version": version.version_string(),
        "routes": [{"method": method, "rule": rule} for rule, method in routes],
    }
    OUTPUT.write_text(json.dumps(document, indent=1) + "\n")
    print(f"{len(routes)} routes of Rucio {document['rucio_version']} written to {OUTPUT}")


if __name__ == "__main__":
    main()

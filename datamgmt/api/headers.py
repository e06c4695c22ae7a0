"""Security headers on every response.

The API answers JSON, but a landing page is HTML and a browser may be pointed at any URL:
``nosniff`` stops it from guessing HTML in a JSON body, and the Content-Security-Policy
(nothing may load, nothing may frame the page) leaves injected markup inert even if some
value ever escaped the template's escaping.  The pages need no script, style or image.
"""

from __future__ import annotations

from flask import Flask, Response

CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


#: Sent on every response that does not set its own (the web pages set a CSP of their own).
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
)
_NAMES = {name.lower(): (name, value) for name, value in SECURITY_HEADERS}


def install_security_headers(app: Flask) -> None:
    @app.after_request
    def _secure(response: Response) -> Response:
        # One pass over the response's few headers, not a search per header: this runs on
        # every call, and four ``setdefault`` calls cost a small GET about 20 µs here.
        missing = dict(_NAMES)
        for key, _value in response.headers:
            missing.pop(key.lower(), None)
        response.headers.extend(missing.values())
        return response

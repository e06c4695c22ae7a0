"""Security headers on every response.

The API answers JSON, but a landing page is HTML and a browser may be pointed at any URL:
``nosniff`` stops it from guessing HTML in a JSON body, and the Content-Security-Policy
(nothing may load, nothing may frame the page) leaves injected markup inert even if some
value ever escaped the template's escaping.  The pages need no script, style or image.
"""

from __future__ import annotations

from flask import Flask, Response

CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def install_security_headers(app: Flask) -> None:
    @app.after_request
    def _secure(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

"""Serve a WSGI app on a free loopback port in a background thread, for as long as a test needs it.

The one in-process server helper: the live API of the integration tests and the PID doubles use
it.  The FTS3 double keeps its own server class because it also runs as a process of its own
(``python -m tests.fts3_double``); tests that need a deliberately broken HTTP peer (a cut
stream, a flaky 503) use ``http.server`` handlers, since no WSGI app can misbehave that way.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from werkzeug.serving import make_server


@contextmanager
def serve(app) -> Iterator[str]:  # noqa: ANN001 - any WSGI application
    """Yield the base URL (``http://127.0.0.1:<port>``) while the app answers requests."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="test-wsgi-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()

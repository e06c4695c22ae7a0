"""The cyclic garbage collector paused while a unit of work builds a large set of objects.

Applying a rule to N files keeps every file's key, replica states and wanted locks alive at
once: millions of objects for N = 100,000, almost none of them in reference cycles (tuples,
strings, dicts), all freed by reference counting when the rule is written.  The collector
cannot know that: each time the live objects grow by a quarter it walks all of them, and the
young collections walk every new batch; at N = 100,000 that was a fifth of the rule's time
(9.5 s with the collector, 7.5 s without, in process on PostgreSQL), and it made rules slower
per file as they grew.  While :func:`gc_paused` is held, the collector does not run; cyclic
garbage made meanwhile waits for the first collection after it.

The collector is one per process, so threads share the pause: it starts with the first holder
and ends with the last, and never re-enables a collector that was disabled before.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0
_resume = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection in this process until the last holder leaves."""
    global _holders, _resume
    with _lock:
        if _holders == 0:
            _resume = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _resume:
                gc.enable()

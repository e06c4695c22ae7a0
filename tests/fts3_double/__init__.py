"""An FTS3 REST server double that executes transfers for real with gfal2 (see fts3.md §7)."""

from .double import Faults, Fts3Double
from .server import Fts3DoubleServer

__all__ = ["Faults", "Fts3Double", "Fts3DoubleServer"]

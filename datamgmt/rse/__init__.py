"""Storage I/O: protocols, physical file names and checksums.

This layer turns an RSE's protocol records into working reads and writes. It has no
database access: callers pass plain records in and register what comes back.
"""

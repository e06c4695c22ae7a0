"""The catalogue: the only layer that touches the database.

Importing the package registers the RSE expression cache's invalidation listener, so
every process that changes RSEs (API, daemons, admin commands) invalidates at once.
"""

from datamgmt.core import expression as _expression  # noqa: F401

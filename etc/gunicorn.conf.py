"""gunicorn settings of a source checkout (also ``gunicorn -c etc/gunicorn.conf.py``).

The defaults live in ``datamgmt/api/gunicorn_conf.py`` so that an installed wheel carries them;
``datamgmt-server`` reads this file when it exists, so local overrides go below the import.
"""

from datamgmt.api.gunicorn_conf import *  # noqa: F403

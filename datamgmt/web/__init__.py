"""The browser interface at ``/ui/``: server-rendered pages over the same core and policy as REST.

No build step and no inline script: Jinja templates (autoescaped), one stylesheet and one small
script that refreshes the dashboard.  Pages authenticate by a session cookie that carries an
ordinary API token, so suspending an account or removing an identity ends its browser sessions
exactly as it ends its API tokens.
"""

from datamgmt.web import admin, oidc, publishing  # noqa: F401 - their pages register on the blueprint
from datamgmt.web.pages import create_blueprint

__all__ = ["create_blueprint"]

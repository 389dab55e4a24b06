"""The web layer (`pip install 'queuekit[api]'`): the HTTP API, the dashboard and /metrics.

    app = create_app(queue, api_key="...")        # a Starlette app: /v1, /dashboard/, /metrics

Modules: `app` (the factory), `auth` (the one authentication decision), `sessions` (signed
cookies, CSRF, flash messages), `guards` (Host, Origin, body size, security headers), `api` and
`models` and `openapi` (the JSON API and its generated document), `dashboard` with `templates/`
and `static/` (the HTML pages), `charts` (the geometry of its activity charts).
"""

from .app import create_app
from .auth import Authenticate

__all__ = ["Authenticate", "create_app"]

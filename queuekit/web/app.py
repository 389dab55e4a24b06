"""`create_app`: the API, the dashboard and /metrics in one Starlette app, every route guarded.

Each request passes, in order: the Host check, the security headers, the Origin check on
state-changing methods, the session cookie, then either a public route (login page, logout,
static files) or the one authentication decision in front of every other route.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, Router

from ..errors import InvalidOptionError
from ..queue import Queue
from .api import DEFAULT_MAX_BODY_BYTES, JobsApi, routes
from .auth import SESSION_SECONDS, Auth, Authenticate, AuthMiddleware, check_secret
from .dashboard import LOGIN_PATH, Dashboard
from .guards import SameOriginMiddleware, SecurityHeadersMiddleware, json_error, trusted_hosts
from .sessions import SessionMiddleware, Signer

if TYPE_CHECKING:
    from ..metrics import Metrics


def create_app(
    queue: Queue,
    *,
    api_key: str | None = None,
    authenticate: Authenticate | None = None,
    secret: bytes | None = None,
    allowed_hosts: Sequence[str] | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    dashboard: bool = True,
    metrics: Metrics | None = None,
) -> Starlette:
    """An ASGI app serving the API for `queue` under /v1 and the dashboard under /dashboard/.

    Every route but the dashboard's login page and static files needs one of: the `api_key`
    (at least 16 characters) as `Authorization: Bearer <key>`, a dashboard login session made
    with that key, or your own `authenticate(request) -> bool` (sync or async) saying yes.
    With neither a key nor `authenticate` the app is open, and answers only to loopback Host
    names: fine for `queuekit serve` on 127.0.0.1, which refuses other addresses without a key.
    `allowed_hosts` adds Host names (then checked whatever the authentication).

    `secret` (16 bytes or more) signs the session cookies: random per app by default, so pass
    the same one to every process serving the app, and across restarts, to keep sessions.
    With `metrics` (a `queuekit.metrics.Metrics`), `GET /metrics` serves Prometheus text.
    `dashboard=False` leaves the dashboard out. The app's lifespan opens and closes `queue`.
    """
    if api_key is not None:
        if not api_key:
            raise InvalidOptionError("api_key is empty: pass a key, or None for no key")
        check_secret(api_key, "api_key")
    if secret is not None:
        check_secret(secret, "secret")
    auth = Auth(api_key, authenticate, secret if secret is not None else secrets.token_bytes(32))
    guarded: list[BaseRoute] = list(routes(JobsApi(queue, max_body_bytes)))
    public: list[BaseRoute] = []
    if dashboard:
        board = Dashboard(queue, auth)
        guarded += board.routes()
        public += board.public_routes()
    if metrics is not None:
        scraper = metrics

        async def serve_metrics(request: Request) -> Response:
            body, content_type = await scraper.scrape(queue)
            return Response(body, media_type=content_type)

        guarded.append(Route("/metrics", serve_metrics, methods=["GET"]))

    login = LOGIN_PATH if dashboard and api_key is not None else None
    everything_else = Mount("", app=AuthMiddleware(Router(guarded), auth, login))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return json_error(exc.status_code, exc.detail, dict(exc.headers or {}))

    async def server_error(request: Request, exc: Exception) -> Response:
        return json_error(500, "internal error")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with queue:
            yield

    app = Starlette(
        routes=[*public, everything_else],
        middleware=[
            Middleware(
                TrustedHostMiddleware,
                allowed_hosts=trusted_hosts(allowed_hosts, auth.enabled),
                www_redirect=False,
            ),
            Middleware(SecurityHeadersMiddleware),
            Middleware(SameOriginMiddleware),
            Middleware(SessionMiddleware, signer=Signer(auth.secret), max_age=SESSION_SECONDS),
        ],
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.state.auth = auth
    return app

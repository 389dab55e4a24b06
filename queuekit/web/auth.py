"""One authentication decision for every route but the login page and static files.

A request is let in when the app has no authentication at all (no key, no `authenticate`), when
your `authenticate(request)` says yes, when it carries `Authorization: Bearer <api key>` (the
scheme in any case), or when it carries a valid login session. A session is made at login with
a random id and lasts `SESSION_SECONDS`; logging out revokes it. After `FREE_FAILURES` wrong
keys in a row, a client (by address) must wait 1 s, then 2, 4… up to `MAX_WAIT_SECONDS`, before
any key of its is checked again: 429 until then.
"""

from __future__ import annotations

import hmac
import inspect
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import InvalidOptionError
from .guards import json_error
from .sessions import Session, csrf_token, session_of

Authenticate = Callable[[Request], bool | Awaitable[bool]]

MIN_SECRET_LENGTH = 16
"""API keys and session secrets are at least this long (characters; bytes for a secret)."""
SESSION_SECONDS = 12 * 3600
FREE_FAILURES = 5
MAX_WAIT_SECONDS = 300
MAX_TRACKED_CLIENTS = 10_000
"""Beyond this many clients with failures, those quiet for `MAX_WAIT_SECONDS` are forgotten."""


def check_secret(value: str | bytes, what: str) -> None:
    """Refuse an API key or session secret too short to resist guessing."""
    if len(value) < MIN_SECRET_LENGTH:
        raise InvalidOptionError(
            f"{what} is {len(value)} characters: use at least {MIN_SECRET_LENGTH} "
            "(for example: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )


class TooManyFailures(Exception):
    """This client sent too many wrong keys; `seconds` until it may try again."""

    def __init__(self, retry_after: float) -> None:
        self.seconds = max(1, math.ceil(retry_after))
        super().__init__(f"too many wrong keys: try again in {self.seconds} s")
        self.headers = {"Retry-After": str(self.seconds)}


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    blocked_until: float = 0.0


class Auth:
    """The app's credentials and the state behind them: failed tries, revoked sessions."""

    def __init__(
        self, api_key: str | None, authenticate: Authenticate | None, secret: bytes
    ) -> None:
        self.api_key = api_key
        self.authenticate = authenticate
        self.secret = secret
        self.clock: Callable[[], float] = time.time
        """Wall-clock seconds: sessions expire by it, in every process serving them."""
        self.failures: dict[str, _Failures] = {}
        self.revoked: dict[str, float] = {}
        """Logged-out session ids, until the time their session would have expired."""

    @property
    def enabled(self) -> bool:
        return self.api_key is not None or self.authenticate is not None

    async def allows(self, request: Request) -> bool:
        """The one decision; raises `TooManyFailures` instead of checking a key too often."""
        if not self.enabled:
            return True
        if self.authenticate is not None:
            verdict = self.authenticate(request)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if verdict:
                return True
        if self.api_key is None:
            return False
        if self.logged_in(session_of(request)):
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.check_key(request, given.strip())

    def check_key(self, request: Request, given: str) -> bool:
        """Compare a key in constant time, counting the failures of the request's client."""
        client = request.client.host if request.client is not None else ""
        now = self.clock()
        failures = self.failures.get(client)
        if failures is not None and failures.blocked_until > now:
            raise TooManyFailures(failures.blocked_until - now)
        assert self.api_key is not None
        if hmac.compare_digest(given.encode(), self.api_key.encode()):
            self.failures.pop(client, None)
            return True
        if failures is None or now - failures.last > MAX_WAIT_SECONDS:  # a fresh start
            failures = self.failures[client] = _Failures()
        failures.count += 1
        failures.last = now
        if failures.count >= FREE_FAILURES:
            wait = min(2.0 ** (failures.count - FREE_FAILURES), MAX_WAIT_SECONDS)
            failures.blocked_until = now + wait
        if len(self.failures) > MAX_TRACKED_CLIENTS:
            self.failures = {
                key: value
                for key, value in self.failures.items()
                if now - value.last <= MAX_WAIT_SECONDS
            }
        return False

    # Sessions

    def logged_in(self, session: Session) -> bool:
        sid, expires = session.get("sid"), session.get("expires")
        return (
            isinstance(sid, str)
            and isinstance(expires, int | float)
            and expires > self.clock()
            and sid not in self.revoked
        )

    def log_in(self, request: Request) -> None:
        """Start a new session: a new id and a new CSRF token (never the pre-login ones)."""
        session = session_of(request)
        session.clear()
        session["sid"] = secrets.token_urlsafe(18)
        session["expires"] = self.clock() + SESSION_SECONDS
        csrf_token(request)

    def log_out(self, request: Request) -> None:
        """Revoke the session, so a copy of its cookie is refused too."""
        session = session_of(request)
        now = self.clock()
        self.revoked = {sid: until for sid, until in self.revoked.items() if until > now}
        sid, expires = session.get("sid"), session.get("expires")
        if isinstance(sid, str) and isinstance(expires, int | float):
            self.revoked[sid] = expires
        session.clear()


class AuthMiddleware:
    """Let a request through only when `Auth.allows` it; say how to get in otherwise."""

    def __init__(self, app: ASGIApp, auth: Auth, login_path: str | None) -> None:
        self.app = app
        self.auth = auth
        self.login_path = login_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            allowed = await self.auth.allows(request)
        except TooManyFailures as exc:
            await json_error(429, str(exc), exc.headers)(scope, receive, send)
            return
        if allowed:
            await self.app(scope, receive, send)
        else:
            await self.refusal(request)(scope, receive, send)

    def refusal(self, request: Request) -> Response:
        wants_page = request.method == "GET" and "text/html" in request.headers.get("accept", "")
        if self.login_path is not None and wants_page:
            return RedirectResponse(request.scope.get("root_path", "") + self.login_path, 303)
        if self.auth.api_key is None:
            return json_error(403, "not allowed")
        return json_error(
            401, "missing or wrong API key", {"WWW-Authenticate": 'Bearer realm="queuekit"'}
        )


__all__ = ["Auth", "AuthMiddleware", "Authenticate", "TooManyFailures", "check_secret"]

"""Browser sessions in a signed cookie: the CSRF token, the login and the next flash message.

The cookie holds compact JSON and an HMAC-SHA256 of it under the app's secret, so a client can
read but not forge it. It is HttpOnly and SameSite=Strict, scoped to the app's root path, and
Secure over HTTPS. Whether a session is logged in (and still valid) is `auth.Auth`'s decision.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE = "queuekit_session"
SCOPE_KEY = "queuekit.session"
"""Where the request's session lives in the ASGI scope (not `session`: the host app's own)."""


class Session(dict[str, Any]):
    """The session's data; `modified` says whether the cookie must be written again."""

    modified = False

    def __setitem__(self, key: str, value: Any) -> None:
        self.modified = True
        super().__setitem__(key, value)

    def pop(self, key: str, *default: Any) -> Any:
        self.modified = self.modified or key in self
        return super().pop(key, *default)

    def clear(self) -> None:
        self.modified = True
        super().clear()


class Signer:
    """Encode a session as `<base64 JSON>.<base64 HMAC>`, and check and decode one."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self.secret, b"session:" + body, hashlib.sha256).digest()

    def encode(self, data: dict[str, Any]) -> str:
        body = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode())
        return f"{body.decode()}.{base64.urlsafe_b64encode(self._mac(body)).decode()}"

    def decode(self, value: str) -> dict[str, Any] | None:
        body, _, mac = value.encode().partition(b".")
        try:
            valid = hmac.compare_digest(base64.urlsafe_b64decode(mac), self._mac(body))
            data = json.loads(base64.urlsafe_b64decode(body)) if valid else None
        except (binascii.Error, ValueError):
            return None
        return data if isinstance(data, dict) else None


class SessionMiddleware:
    """Load the session from its cookie before the app runs; write it back if it changed."""

    def __init__(self, app: ASGIApp, signer: Signer, max_age: int) -> None:
        self.app = app
        self.signer = signer
        self.max_age = max_age

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        cookie = connection.cookies.get(SESSION_COOKIE)
        stored = None if cookie is None else self.signer.decode(cookie)
        session = scope[SCOPE_KEY] = Session(stored or {})
        secure = "; Secure" if connection.url.scheme == "https" else ""
        path = scope.get("root_path") or "/"

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and session.modified:
                headers = MutableHeaders(scope=message)
                if session:
                    value = f"{self.signer.encode(session)}; Max-Age={self.max_age}"
                else:
                    value = "; Max-Age=0"
                headers.append(
                    "Set-Cookie",
                    f"{SESSION_COOKIE}={value}; Path={path}; HttpOnly; SameSite=Strict{secure}",
                )
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def session_of(request: Request) -> Session:
    session: Session = request.scope[SCOPE_KEY]
    return session


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use (a login makes a new one)."""
    session = session_of(request)
    if not isinstance(session.get("csrf"), str):
        session["csrf"] = secrets.token_urlsafe(24)
    token: str = session["csrf"]
    return token


def csrf_valid(request: Request, given: str) -> bool:
    expected = session_of(request).get("csrf")
    return isinstance(expected, str) and hmac.compare_digest(given.encode(), expected.encode())


def flash(request: Request, message: str) -> None:
    """Show `message` once, on the next page this browser loads."""
    session_of(request)["flash"] = message


def take_flash(request: Request) -> str | None:
    message = session_of(request).pop("flash", None)
    return message if isinstance(message, str) else None

"""The checks every request passes whatever its route: Host, Origin, body size; security headers.

- Host: an app without authentication answers only to loopback names (`localhost`,
  `127.0.0.1`, `[::1]`), so a page that rebinds its own DNS name to 127.0.0.1 gets a 400;
  `allowed_hosts` adds names (and then applies to an app with authentication too).
- Origin: a state-changing request (any method but GET, HEAD, OPTIONS) whose `Origin` is
  another site's, or `null`, is refused with 403. Browsers send `Origin` on every cross-site
  POST, `no-cors` ones included; clients such as curl send none and are not affected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pydantic
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Model = TypeVar("Model", bound=pydantic.BaseModel)
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The API's error shape: `{"error": "..."}`."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def trusted_hosts(allowed_hosts: Sequence[str] | None, authenticated: bool) -> list[str]:
    """The Host names the app answers to (`*`: any)."""
    if allowed_hosts is None:
        return ["*"] if authenticated else list(LOOPBACK_HOSTS)
    if isinstance(allowed_hosts, str):
        raise TypeError("allowed_hosts is a list of host names, not one string")
    return [*LOOPBACK_HOSTS, *allowed_hosts]


class SameOriginMiddleware:
    """Refuse state-changing requests sent by another site's pages (or an opaque `null` one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if origin is not None and not _same_origin(origin, headers.get("host", "")):
                response = json_error(403, f"cross-origin request refused (Origin: {origin})")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _same_origin(origin: str, host: str) -> bool:
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return origin != "null" and bool(netloc) and netloc.lower() == host.lower()


class SecurityHeadersMiddleware:
    """Every response: no sniffing, no framing, no inline script; pages and JSON not cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CSP
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "same-origin"
                kind = headers.get("content-type", "")
                if kind.startswith(("text/html", "application/json")):
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def validated(model: type[Model], data: Any) -> Model:
    """`data` as `model`; HTTPException(422) naming the first field in error."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise HTTPException(422, f"{where}: {first['msg']}") from None


async def read_body(request: Request, limit: int) -> bytes:
    """The request body; HTTPException(413) as soon as it is over `limit` bytes."""
    too_large = HTTPException(413, f"request body over {limit} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdecimal() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)

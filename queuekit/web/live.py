"""Server-sent events: the API's `GET /v1/events` (every event, as JSON) and the dashboard's
`GET /dashboard/events` (a count of the changes to one page's fragment, at most twice a second).
Streams are left out of the API's OpenAPI document, which cannot describe them.

Both subscribe before answering, so what happens once the response started is sent; nothing
from before, and nothing missed while no client was connected, is replayed. A comment line
opens the stream (a client may wait for it) and another is sent after `KEEPALIVE_SECONDS`
without events, so that proxies keep the connection open.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import parse_qs, unquote, urlsplit

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..errors import BackendUnavailableError, ValidationError
from ..events import EventFilter, EventStream
from ..queue import Queue
from .guards import json_error

KEEPALIVE_SECONDS = 15.0
"""Seconds of silence after which a comment line is sent."""
CHANGES_EVERY = 0.5
"""Seconds between two messages of the dashboard's stream: it says "something changed"."""
FILTERS = ("queue", "type", "job_id", "kinds")
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
"""No cache may keep the stream, nor a proxy (nginx) buffer it."""

Messages = Callable[[EventStream], AsyncIterator[str]]


async def _stream(queue: Queue, where: EventFilter, messages: Messages) -> Response:
    stream = await EventStream(queue.backend, where).open()

    async def body() -> AsyncIterator[str]:
        try:
            yield ": ready\n\n"
            async for message in messages(stream):
                yield message
        finally:
            with anyio.CancelScope(shield=True):
                await stream.aclose()

    return StreamingResponse(body(), media_type="text/event-stream", headers=HEADERS)


async def _next(stream: EventStream, timeout: float) -> bool:
    """Whether an event came within `timeout` seconds (it is taken)."""
    with anyio.move_on_after(timeout):
        await anext(stream)
        return True
    return False


async def each_event(stream: EventStream) -> AsyncIterator[str]:
    """Every event as a `data:` line of its JSON form."""
    while True:
        with anyio.move_on_after(KEEPALIVE_SECONDS) as silence:
            event = await anext(stream)
        yield ": keep-alive\n\n" if silence.cancelled_caught else f"data: {event.to_json()}\n\n"


async def changes(stream: EventStream) -> AsyncIterator[str]:
    """A `data:` line with how many events came, at once after a quiet spell, then at most
    every `CHANGES_EVERY` seconds while they keep coming."""
    sent_at, count = -math.inf, 0
    while True:
        now = anyio.current_time()
        wait = KEEPALIVE_SECONDS if not count else max(0.0, sent_at + CHANGES_EVERY - now)
        came = await _next(stream, wait)
        count += came
        if count and anyio.current_time() >= sent_at + CHANGES_EVERY:
            yield f"data: {count}\n\n"
            sent_at, count = anyio.current_time(), 0
        elif not came and not count:
            yield ": keep-alive\n\n"


async def _guarded(start: Callable[[], Awaitable[Response]]) -> Response:
    """The stream `start` opens, or the API's error for a bad filter or a backend down."""
    try:
        return await start()
    except ValidationError as exc:
        return json_error(422, str(exc))
    except BackendUnavailableError as exc:
        return json_error(503, f"backend unavailable: {exc}")


async def api_events(queue: Queue, request: Request) -> Response:
    """`GET /v1/events?queue=&type=&job_id=&kinds=a,b`: every event that matches."""
    params = request.query_params
    unknown = sorted(set(params) - set(FILTERS))
    if unknown:
        return json_error(422, f"unknown query parameter {unknown[0]!r}; use {', '.join(FILTERS)}")
    kinds = params.get("kinds")

    async def start() -> Response:
        where = EventFilter.of(
            params.get("queue"),
            params.get("type"),
            params.get("job_id"),
            None if kinds is None else [kind for kind in kinds.split(",") if kind],
        )
        return await _stream(queue, where, each_event)

    return await _guarded(start)


def fragment_filter(fragment: str) -> EventFilter:
    """The events that change a dashboard fragment, by its URL (`data-refresh`): one job's,
    one queue's, those of the jobs list's queue and type; any other fragment, every event."""
    parts = urlsplit(fragment)
    _, _, path = parts.path.partition("/fragments/")
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    kind, _, name = path.partition("/")
    if kind == "jobs" and name:
        return EventFilter.of(job_id=unquote(name))
    if kind == "queues" and name:
        return EventFilter.of(queue=unquote(name))
    if kind == "jobs":
        return EventFilter.of(query.get("queue") or None, query.get("type") or None)
    return EventFilter()


async def dashboard_changes(queue: Queue, request: Request) -> Response:
    """`GET /dashboard/events?fragment=<its data-refresh URL>`: when that fragment changed."""

    async def start() -> Response:
        where = fragment_filter(request.query_params.get("fragment", ""))
        return await _stream(queue, where, changes)

    return await _guarded(start)


def api_route(queue: Queue) -> Route:
    async def endpoint(request: Request) -> Response:
        return await api_events(queue, request)

    return Route("/v1/events", endpoint, methods=["GET"])


def dashboard_route(queue: Queue, path: str) -> Route:
    async def endpoint(request: Request) -> Response:
        return await dashboard_changes(queue, request)

    return Route(path, endpoint, methods=["GET"])


__all__ = ["api_route", "dashboard_route", "fragment_filter"]

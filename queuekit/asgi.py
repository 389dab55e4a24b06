"""Open a queue, and run workers and schedulers beside it, for an ASGI app's lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from .errors import InvalidOptionError
from .queue import Queue
from .scheduler.engine import Scheduler
from .worker import Worker

Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


def lifespan(queue: Queue, *beside: Worker | Scheduler) -> Lifespan:
    """The app's lifespan: `queue` open on `app.state.queue`, and each worker and scheduler in
    `beside` running, while the app serves; at shutdown they stop gracefully (a worker drains
    its running jobs), then the queue closes.

    Pass it as `Starlette(lifespan=...)` or `FastAPI(lifespan=...)`, or enter it inside a
    lifespan of your own: `async with lifespan(queue, worker)(app):`.
    """
    if any(service.queue is not queue for service in beside):
        raise InvalidOptionError("every worker and scheduler must run on the queue it is given")

    @asynccontextmanager
    async def run(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(queue)
            for service in beside:
                await stack.enter_async_context(service)
            app.state.queue = queue
            yield

    return run


def get_queue(connection: HTTPConnection) -> Queue:
    """The queue the app's `lifespan` opened: a FastAPI dependency (see `queuekit.fastapi`),
    or call it with a Starlette request."""
    queue = getattr(connection.app.state, "queue", None)
    if not isinstance(queue, Queue):
        raise RuntimeError("no queue on app.state: give the app queuekit.asgi.lifespan(queue)")
    return queue


__all__ = ["Lifespan", "get_queue", "lifespan"]

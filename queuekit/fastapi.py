"""FastAPI's side of `queuekit.asgi`: `QueueDep` hands request handlers the app's queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from .asgi import get_queue, lifespan
from .queue import Queue

QueueDep = Annotated[Queue, Depends(get_queue)]
"""A handler's parameter `queue: QueueDep` gets the queue the app's `lifespan` opened."""

__all__ = ["QueueDep", "get_queue", "lifespan"]

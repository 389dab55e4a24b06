"""What the API tests share: an app client, and the API on each of the four backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from queuekit import Queue
from queuekit.api import create_app

KEY = "s3cret-key-for-tests"
AUTH = {"Authorization": f"Bearer {KEY}"}


def client_for(queue: Queue, **options: Any) -> httpx.AsyncClient:
    app = create_app(queue, **options)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")


@pytest.fixture
async def api(queue: Queue) -> AsyncIterator[httpx.AsyncClient]:
    """The API on each of the four backends."""
    async with client_for(queue, api_key=KEY) as client:
        client.headers.update(AUTH)
        yield client

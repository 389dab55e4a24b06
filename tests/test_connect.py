"""`connect()`: URLs pick backends; a bad URL or scheme is a clear, typed error."""

from __future__ import annotations

from typing import Any

import pytest

import queuekit
from queuekit import InvalidURLError
from queuekit.backends.memory import MemoryBackend
from queuekit.backends.sqlite import SQLiteBackend


def test_schemes_pick_backends() -> None:
    assert isinstance(queuekit.connect("memory://").backend, MemoryBackend)
    assert isinstance(queuekit.connect("sqlite:///jobs.db").backend, SQLiteBackend)
    assert isinstance(queuekit.connect("SQLite:///jobs.db").backend, SQLiteBackend)


def test_a_backend_object_is_accepted() -> None:
    backend = MemoryBackend()
    assert queuekit.connect(backend).backend is backend


@pytest.mark.parametrize("url", ["", "jobs.db", "mysql://localhost/db", "http://x", "::::"])
def test_unknown_schemes(url: str) -> None:
    with pytest.raises(InvalidURLError, match="scheme"):
        queuekit.connect(url)


@pytest.mark.parametrize("target", [None, 42, b"memory://"])
def test_targets_that_are_not_urls(target: Any) -> None:
    with pytest.raises(InvalidURLError):
        queuekit.connect(target)


async def test_queue_handles_nest() -> None:
    queue = queuekit.connect("memory://")
    async with queue, queue:
        await queue.enqueue("t")
    assert (await queue.stats()).pending == 1

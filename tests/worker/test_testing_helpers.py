"""`queuekit.testing`: users test their own tasks through a real worker, with no server."""

from __future__ import annotations

import pytest

import queuekit
from queuekit import testing

tasks = queuekit.Tasks()


@tasks.task()
async def greet(name: str, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"


@tasks.task(max_attempts=5)
async def explode(reason: str) -> None:
    raise LookupError(reason)


@tasks.task()
def shout(word: str) -> str:
    return word.upper()


async def test_run_returns_the_result() -> None:
    assert await testing.run(greet, "ada") == "hello ada!"
    assert await testing.run(greet, name="bob", punctuation="?") == "hello bob?"
    assert await testing.run(shout, "sync") == "SYNC"


async def test_run_raises_the_handlers_exception() -> None:
    with pytest.raises(LookupError, match="no such thing"):
        await testing.run(explode, "no such thing")


async def test_memory_queue_is_fresh_each_time() -> None:
    async with testing.memory_queue() as queue:
        await queue.enqueue("greet", {"name": "x"})
        assert (await queue.stats()).pending == 1
    async with testing.memory_queue() as queue:
        assert (await queue.stats()).pending == 0

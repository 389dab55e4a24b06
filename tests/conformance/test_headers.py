"""Conformance: job headers round-trip on every path that returns a job; bad ones store nothing."""

from __future__ import annotations

from typing import Any

import pytest

import queuekit
from queuekit import Backend, JobStatus, Queue, Tasks, Worker
from queuekit.errors import InvalidOptionError
from queuekit.validation import MAX_HEADERS_BYTES

from ..worker.options import FAST
from .helpers import claim, claim_one

HEADERS = {"tenant": "acme", "quote": 'say "hi"', "text": "héllo ✓ \x00 {x}", "empty": ""}


async def test_headers_round_trip_on_every_path(queue: Queue, backend: Backend) -> None:
    one = await queue.enqueue("t", {"n": 0}, headers=HEADERS)
    many = await queue.enqueue_many(
        [
            queuekit.new_job("t", {"n": 1}, headers={"n": "1"}),
            queuekit.new_job("t", {"n": 2}),
            queuekit.new_job("t", {"n": 3}, headers={"n": "3"}, unique_key="u"),
        ]
    )
    expected = {one.id: HEADERS, many[0].id: {"n": "1"}, many[1].id: {}, many[2].id: {"n": "3"}}
    assert {job.id: job.headers for job in [one, *many]} == expected
    for job_id, headers in expected.items():
        assert (await queue.get_job(job_id)).headers == headers
    assert {job.id: job.headers for job in (await queue.list_jobs()).jobs} == expected
    # A unique key's live holder comes back with its own headers, not the request's.
    holder = await queue.enqueue("t", unique_key="u", headers={"n": "other"})
    assert holder.id == many[2].id and holder.headers == {"n": "3"}

    claimed = await claim(backend, 4)
    assert {job.id: job.headers for job in claimed} == expected
    dead = next(job for job in claimed if job.id == one.id)
    assert await backend.fail(dead.attempt, "boom", retry_in=None) == JobStatus.DEAD
    replayed = await queue.replay(one.id)
    assert replayed.status == JobStatus.PENDING and replayed.headers == HEADERS
    assert (await claim_one(backend)).headers == HEADERS


async def test_a_job_without_headers_has_an_empty_dict(queue: Queue, backend: Backend) -> None:
    plain = await queue.enqueue("t")
    empty = await queue.enqueue("t", headers={})
    assert plain.headers == empty.headers == {}
    assert (await queue.get_job(plain.id)).headers == {}
    assert [job.headers for job in await claim(backend, 2)] == [{}, {}]


async def test_typed_tasks_take_headers_from_their_options(queue: Queue) -> None:
    tasks = Tasks()

    @tasks.task()
    async def greet(name: str) -> None: ...

    job = await greet.with_options(headers={"tenant": "acme"}).enqueue(queue, name="ada")
    assert job.payload == {"name": "ada"}
    assert (await queue.get_job(job.id)).headers == {"tenant": "acme"}


async def test_handlers_get_their_payload_and_find_headers_on_the_job(queue: Queue) -> None:
    tasks = Tasks()
    seen: list[tuple[str, dict[str, str]]] = []

    @tasks.task()
    async def greet(name: str) -> None:
        seen.append((name, queuekit.current_job().job.headers))

    await queue.enqueue("greet", {"name": "ada"}, headers={"tenant": "acme"})
    await Worker(queue, tasks, **FAST).run_until_empty()
    assert seen == [("ada", {"tenant": "acme"})]


async def test_headers_up_to_the_size_limit(queue: Queue) -> None:
    # {"k":"<value>"} is 8 bytes around the value.
    largest = {"k": "x" * (MAX_HEADERS_BYTES - 8)}
    job = await queue.enqueue("t", headers=largest)
    assert (await queue.get_job(job.id)).headers == largest
    with pytest.raises(InvalidOptionError):
        await queue.enqueue("t", headers={"k": "x" * (MAX_HEADERS_BYTES - 7)})
    assert len((await queue.list_jobs()).jobs) == 1


BAD_HEADERS: list[Any] = [
    ["tenant", "acme"],
    "tenant=acme",
    {"": "empty key"},
    {1: "int key"},
    {"n": 1},
    {"n": None},
    {"n": b"bytes"},
    {"n": ["a"]},
    {"n": "\ud800"},
    {"k": "x" * MAX_HEADERS_BYTES},
    {f"k{n}": "x" * 100 for n in range(100)},
]


@pytest.mark.parametrize("headers", BAD_HEADERS, ids=lambda h: repr(h)[:30])
async def test_bad_headers_raise_and_store_nothing(queue: Queue, headers: Any) -> None:
    with pytest.raises(InvalidOptionError):
        await queue.enqueue("t", headers=headers)
    with pytest.raises(InvalidOptionError):
        await queue.enqueue_many([queuekit.new_job("t"), queuekit.new_job("t", headers=headers)])
    assert (await queue.list_jobs()).jobs == []

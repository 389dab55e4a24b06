"""One job's outcome never spoils another's: texts no backend can store are made storable by
the worker, and a finish call a backend refuses fails alone, not with its batch."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest

import queuekit
from queuekit import Backend, BackendUnavailableError, JobStatus, Queue, Tasks, Worker
from queuekit.outcomes import MAX_ERROR_CHARS, storable

from .options import FAST

GOOD = 6


async def test_a_mixed_finish_batch_records_every_outcome_truthfully(queue: Queue) -> None:
    tasks = Tasks()
    gate = anyio.Event()
    started = 0

    async def hold() -> None:
        # Every handler ends in the same turn of the event loop: their calls share a batch.
        nonlocal started
        started += 1
        await gate.wait()

    @tasks.task(max_attempts=1)
    async def good(n: int) -> dict[str, int]:
        await hold()
        return {"n": n}

    @tasks.task(max_attempts=1)
    async def surrogate_error() -> None:
        await hold()
        raise ValueError("bad \ud800 text")

    @tasks.task(max_attempts=1)
    async def nul_error() -> None:
        await hold()
        raise ValueError("a\x00b")

    @tasks.task(max_attempts=1)
    async def huge_error() -> None:
        await hold()
        raise ValueError("x" * 1_000_000)

    @tasks.task(max_attempts=1)
    async def surrogate_discard() -> None:
        await hold()
        raise queuekit.Discard("gone \udfff")

    @tasks.task(max_attempts=1)
    async def nul_result() -> str:
        await hold()
        return "a\x00b"

    @tasks.task(max_attempts=1)
    async def surrogate_result() -> str:
        await hold()
        return "a\ud800b"

    good_jobs = [await good.enqueue(queue, n) for n in range(GOOD)]
    poisoned = {
        name: await queue.enqueue(name, max_attempts=1)
        for name in (
            "surrogate_error",
            "nul_error",
            "huge_error",
            "surrogate_discard",
            "nul_result",
            "surrogate_result",
        )
    }
    everyone = GOOD + len(poisoned)
    async with Worker(queue, tasks, concurrency=everyone, **FAST):
        with anyio.fail_after(30):
            while started < everyone:
                await anyio.sleep(0.01)
        gate.set()
        with anyio.fail_after(30):
            for job in good_jobs + list(poisoned.values()):
                while not (await queue.get_job(job.id)).status.is_terminal:
                    await anyio.sleep(0.02)

    for n, job in enumerate(good_jobs):
        done = await queue.get_job(job.id)
        assert (done.status, done.result) == (JobStatus.COMPLETED, {"n": n})
    outcomes = {name: await queue.get_job(job.id) for name, job in poisoned.items()}
    assert all(job.last_error != "lease expired" for job in outcomes.values())
    assert outcomes["nul_result"].status == JobStatus.COMPLETED
    assert outcomes["nul_result"].result == "a\x00b"  # stored exactly, as JSON's \u0000
    errors: dict[str, str] = {}
    for name in ("surrogate_error", "nul_error", "huge_error", "surrogate_discard"):
        job = outcomes[name]
        assert job.status == JobStatus.DEAD and job.last_error is not None, job
        errors[name] = job.last_error
    assert errors["surrogate_error"].startswith("ValueError: bad \ufffd text\nTraceback")
    assert errors["nul_error"].startswith("ValueError: a\\x00b\nTraceback")
    assert errors["huge_error"].startswith("ValueError: xxx")
    assert len(errors["huge_error"]) <= MAX_ERROR_CHARS
    assert errors["surrogate_discard"] == "Discard: gone \ufffd"
    refused = outcomes["surrogate_result"]
    assert refused.status == JobStatus.DEAD and refused.last_error is not None
    assert "result is not a JSON value" in refused.last_error


async def test_a_call_the_backend_refuses_fails_alone(backend: Backend) -> None:
    """Calls made together are written together; one the backend cannot store (a raw lone
    surrogate, which the worker never sends) must not take the others down with it."""
    queue = Queue(backend)
    await queue.enqueue_many(queuekit.new_job("t") for _ in range(5))
    jobs = await backend.claim({"default": 5}, limit=5, lease=30, worker_id="test")
    assert len(jobs) == 5
    calls: list[Any] = [
        backend.complete(jobs[0].attempt, '"a\\u0000b"'),
        backend.fail(jobs[1].attempt, "raw \ud800 surrogate", retry_in=None),
        backend.complete(jobs[2].attempt, '{"n":2}'),
        backend.fail(jobs[3].attempt, "plain", retry_in=None),
        backend.snooze(jobs[4].attempt, 60),
    ]
    answers = await asyncio.gather(*calls, return_exceptions=True)
    assert answers[0] == answers[2] == JobStatus.COMPLETED, answers
    assert answers[4] == JobStatus.PENDING, answers
    assert answers[3] == JobStatus.DEAD
    refused = answers[1]
    if isinstance(refused, BaseException):
        assert not isinstance(refused, BackendUnavailableError), refused
        assert (await queue.get_job(jobs[1].id)).status == JobStatus.RUNNING
    else:  # a backend that can hold any str (memory) stores it
        assert refused == JobStatus.DEAD
    assert (await queue.get_job(jobs[0].id)).result == "a\x00b"
    assert (await queue.get_job(jobs[2].id)).result == {"n": 2}
    assert (await queue.get_job(jobs[4].id)).status == JobStatus.PENDING


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("plain", "plain"),
        ("lone \ud800 and \udfff", "lone \ufffd and \ufffd"),
        ("pair \ud83d\ude00", "pair \U0001f600"),
        ("nul \x00", "nul \\x00"),
    ],
)
def test_storable_texts(text: str, stored: str) -> None:
    assert storable(text) == stored
    stored.encode("utf-8")


def test_storable_texts_are_bounded_keeping_head_and_tail() -> None:
    text = "head" + "x" * 100_000 + "tail"
    kept = storable(text, limit=1000)
    assert len(kept) <= 1000 and kept.startswith("head") and kept.endswith("tail")

"""A task's `retry_on` and `discard_on` decide which failures retry, on every backend."""

from __future__ import annotations

from datetime import timedelta

import pytest

from queuekit import (
    Fixed,
    InvalidOptionError,
    JobFailedError,
    JobStatus,
    Queue,
    RateLimited,
    Retry,
    Tasks,
    Worker,
    current_job,
)

from .options import FAST

tasks = Tasks()


class Flaky(ConnectionError):
    """A subclass: `retry_on` and `discard_on` match subclasses too."""


@tasks.task(max_attempts=3, retry=Fixed(0), retry_on=ConnectionError)
async def call_service(fail_with: str, attempts_to_fail: int) -> int:
    attempt = current_job().job.attempts
    if attempt <= attempts_to_fail:
        raise Flaky("reset") if fail_with == "flaky" else ValueError("bad answer")
    return attempt


@tasks.task(max_attempts=5, retry=Fixed(0), discard_on=(KeyError, TypeError))
async def look_up(error: str) -> None:
    raise KeyError("no such account") if error == "key" else RuntimeError("try again")


@tasks.task(max_attempts=3, retry_on=ConnectionError, discard_on=Exception)
async def told_to_retry() -> int:
    attempt = current_job().job.attempts
    if attempt == 1:
        raise Retry(after=timedelta(0), count_attempt=True)  # wins over both rules
    return attempt


async def dead_after(queue: Queue, job_id: str) -> int:
    with pytest.raises(JobFailedError) as raised:
        await queue.result(job_id, timeout=30)
    assert raised.value.job.status == JobStatus.DEAD
    return raised.value.job.attempts


async def test_only_the_exceptions_in_retry_on_retry(queue: Queue) -> None:
    async with Worker(queue, tasks, **FAST):
        retried = await call_service.enqueue(queue, "flaky", 2)
        refused = await call_service.enqueue(queue, "value", 2)
        assert await queue.result(retried.id, timeout=30) == 3
        assert await dead_after(queue, refused.id) == 1
    error = (await queue.get_job(refused.id)).last_error
    assert error is not None and error.startswith("ValueError: bad answer")


async def test_the_exceptions_in_discard_on_end_the_job_at_once(queue: Queue) -> None:
    async with Worker(queue, tasks, **FAST):
        discarded = await look_up.enqueue(queue, "key")
        retried = await look_up.enqueue(queue, "other")
        assert await dead_after(queue, discarded.id) == 1
        assert await dead_after(queue, retried.id) == 5
    error = (await queue.get_job(discarded.id)).last_error
    assert error is not None and error.startswith("KeyError: 'no such account'")


async def test_a_retry_the_handler_asks_for_wins_over_the_rules(queue: Queue) -> None:
    async with Worker(queue, tasks, **FAST):
        job = await told_to_retry.enqueue(queue)
        assert await queue.result(job.id, timeout=30) == 2


def test_rules_take_exception_classes_and_waits_are_checked() -> None:
    with pytest.raises(InvalidOptionError, match="retry_on takes exception classes"):
        Tasks().task(retry_on="ConnectionError")  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionError, match="discard_on takes exception classes"):
        Tasks().task(discard_on=(KeyError, 3))  # type: ignore[arg-type]
    assert Retry(after=timedelta(minutes=2)).after == 120.0
    assert RateLimited(after=timedelta(seconds=30)).after == 30.0
    with pytest.raises(InvalidOptionError, match="after must be finite and >= 0"):
        Retry(after=-1)
    with pytest.raises(InvalidOptionError, match="after must be finite"):
        RateLimited(after=float("nan"))

"""Typed enqueue: mypy checks task arguments (each `type: ignore` below must be needed,
since mypy --strict reports unused ignores, so this file fails the lint if typing breaks)."""

from __future__ import annotations

import pytest

import queuekit
from queuekit import InvalidOptionError, Queue

tasks = queuekit.Tasks()


@tasks.task()
async def send_email(to: str, subject: str, retries: int = 0) -> bool:
    return bool(to and subject and retries >= 0)


@tasks.task()
def resize(path: str, width: int) -> str:
    return f"{path}@{width}"


async def test_typed_enqueue_checks_arguments(queue: Queue) -> None:
    job = await send_email.enqueue(queue, "a@example.com", subject="hi")
    assert job.payload == {"to": "a@example.com", "subject": "hi"}
    await resize.enqueue(queue, "a.png", width=10)
    with pytest.raises(InvalidOptionError):
        await send_email.enqueue(queue, to="a@example.com")  # type: ignore[call-arg]
    with pytest.raises(InvalidOptionError):
        await resize.enqueue(queue, "a.png", width=10, height=3)  # type: ignore[call-arg]
    await resize.enqueue(queue, "a.png", width="wide")  # type: ignore[arg-type]


async def test_with_options_keeps_the_signature(queue: Queue) -> None:
    delayed = send_email.with_options(delay=60, queue="emails", priority=queuekit.Priority.HIGH)
    job = await delayed.enqueue(queue, "b@example.com", "later")
    assert (job.queue, job.priority) == ("emails", queuekit.Priority.HIGH)
    assert job.scheduled_at > job.created_at


async def test_with_options_adds_to_the_options_before(queue: Queue) -> None:
    tagged = send_email.with_options(queue="emails").with_options(headers={"tenant": "acme"})
    job = await tagged.enqueue(queue, "c@example.com", "hi")
    assert (job.queue, job.headers) == ("emails", {"tenant": "acme"})
    assert send_email.with_options(queue="emails").options == {"queue": "emails"}


async def test_mypy_and_the_runtime_check_the_enqueue_options(queue: Queue) -> None:
    with pytest.raises(InvalidOptionError, match="unknown option 'prio'"):
        await queue.enqueue("t", prio=3)  # type: ignore[call-arg]
    with pytest.raises(InvalidOptionError, match="priority must be an int"):
        await queue.enqueue("t", priority="high")  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionError, match="max_attempts must be an int"):
        queuekit.new_job("t", max_attempts=None)  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionError, match="unique_key must be a string"):
        await send_email.with_options(unique_key=7).enqueue(queue, "a", "b")  # type: ignore[arg-type]


async def test_a_typed_result_has_the_handler_return_type(queue: Queue) -> None:
    job = await resize.enqueue(queue, "a.png", width=10)
    await queuekit.Worker(queue, tasks, poll_interval=0.05).run_until_empty()
    path: str = await resize.result(queue, job)
    width: int = await resize.result(queue, job.id)  # type: ignore[assignment]
    assert {path, width} == {"a.png@10"}

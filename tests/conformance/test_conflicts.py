"""Conformance: a taken id raises `JobExistsError`; deleting a running job, `JobRunningError`."""

from __future__ import annotations

import pytest

import queuekit
from queuekit import Backend, InvalidOptionError, JobExistsError, JobRunningError, JobStatus, Queue

from .helpers import claim_one


async def test_a_taken_id_raises_job_exists(queue: Queue) -> None:
    await queue.enqueue("t", {"first": True}, id="order-42")
    with pytest.raises(JobExistsError) as raised:
        await queue.enqueue("t", {"second": True}, id="order-42")
    assert raised.value.job_id == "order-42" and "order-42" in str(raised.value)
    assert isinstance(raised.value, InvalidOptionError)  # what callers caught before
    assert (await queue.get_job("order-42")).payload == {"first": True}


async def test_a_taken_id_in_a_bulk_enqueue_stores_none_of_it(queue: Queue) -> None:
    await queue.enqueue("t", id="taken")
    batch = [queuekit.new_job("t", id=job_id) for job_id in ("fresh-1", "taken", "fresh-2")]
    with pytest.raises(JobExistsError) as raised:
        await queue.enqueue_many(batch)
    assert raised.value.job_id == "taken"
    twins = [queuekit.new_job("t", id="twin"), queuekit.new_job("t", id="twin")]
    with pytest.raises(JobExistsError) as raised:
        await queue.enqueue_many(twins)
    assert raised.value.job_id == "twin"
    assert [job.id for job in (await queue.list_jobs()).jobs] == ["taken"]


async def test_a_taken_id_in_a_large_bulk_enqueue_stores_none_of_it(queue: Queue) -> None:
    """As above, in a call large enough that a backend may store it another way (PostgreSQL
    by COPY)."""
    await queue.enqueue("t", id="taken")
    fresh = [queuekit.new_job("t") for _ in range(600)]
    with pytest.raises(JobExistsError) as raised:
        await queue.enqueue_many([*fresh[:300], queuekit.new_job("t", id="taken"), *fresh[300:]])
    assert raised.value.job_id == "taken"
    with pytest.raises(JobExistsError) as raised:
        await queue.enqueue_many([*fresh, fresh[0]])
    assert raised.value.job_id == fresh[0].id
    assert [job.id for job in (await queue.list_jobs()).jobs] == ["taken"]


async def test_a_held_unique_key_still_answers_with_its_holder(queue: Queue) -> None:
    holder = await queue.enqueue("t", id="holder", unique_key="k")
    # The key's holder is the answer even when the request's id is the holder's own.
    assert (await queue.enqueue("t", id="holder", unique_key="k")).id == holder.id


async def test_deleting_a_running_job_raises_job_running(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t")
    running = await claim_one(backend)
    for delete in (backend.delete_job, queue.delete_job):
        with pytest.raises(JobRunningError) as raised:
            await delete(job.id)
        assert raised.value.job_id == job.id
    assert (await queue.get_job(job.id)).status == JobStatus.RUNNING
    assert await backend.complete(running.attempt) == JobStatus.COMPLETED
    assert await backend.delete_job(job.id) is True
    assert await backend.delete_job(job.id) is False  # unknown now: no error

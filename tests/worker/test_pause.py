"""A running worker honours a pause made through another client, and picks up after resume."""

from __future__ import annotations

import anyio

import queuekit
from queuekit import JobStatus, Queue, Tasks, Worker

from ..setups import BackendSetup
from .options import FAST


async def test_worker_stops_claiming_a_paused_queue_and_resumes(
    queue: Queue, backend_setup: BackendSetup
) -> None:
    tasks = Tasks()
    ran: list[str] = []

    @tasks.task()
    async def note(queue_name: str) -> None:
        ran.append(queue_name)

    operator = queuekit.Queue(backend_setup.make())  # another client, as the CLI would be
    async with operator, Worker(queue, tasks, queues=["a", "b"], **FAST):
        await operator.pause("a")
        await anyio.sleep(2 * FAST["poll_interval"])  # every worker sees it within a poll
        held = await queue.enqueue("note", {"queue_name": "a"}, queue="a")
        other = await queue.enqueue("note", {"queue_name": "b"}, queue="b")
        assert await queue.result(other.id, timeout=10) is None
        await anyio.sleep(4 * FAST["poll_interval"])
        assert (await queue.get_job(held.id)).status == JobStatus.PENDING
        assert ran == ["b"]
        await operator.resume("a")
        assert await queue.result(held.id, timeout=10) is None
    assert ran == ["b", "a"]

"""Small helpers the conformance tests share."""

from __future__ import annotations

from queuekit import Backend, Job

WORKER = "test-worker"


async def claim(
    backend: Backend, limit: int = 1, *, queue: str = "default", lease: float = 30.0
) -> list[Job]:
    return await backend.claim({queue: limit}, limit=limit, lease=lease, worker_id=WORKER)


async def claim_one(backend: Backend, *, queue: str = "default", lease: float = 30.0) -> Job:
    jobs = await claim(backend, 1, queue=queue, lease=lease)
    assert len(jobs) == 1, f"expected a claimable job in {queue!r}, got {jobs}"
    return jobs[0]

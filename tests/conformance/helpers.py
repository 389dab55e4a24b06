"""Small helpers the conformance tests share."""

from __future__ import annotations

from queuekit import Backend, Job

from ..waiting import eventually

WORKER = "test-worker"


async def claim(
    backend: Backend, limit: int = 1, *, queue: str = "default", lease: float = 30.0
) -> list[Job]:
    return await backend.claim({queue: limit}, limit=limit, lease=lease, worker_id=WORKER)


async def claim_one(backend: Backend, *, queue: str = "default", lease: float = 30.0) -> Job:
    jobs = await claim(backend, 1, queue=queue, lease=lease)
    assert len(jobs) == 1, f"expected a claimable job in {queue!r}, got {jobs}"
    return jobs[0]


async def claim_when_due(backend: Backend) -> Job:
    """Claim until a job comes due, and check by the backend's clock that it was not early.

    (A check that nothing is claimable right after a short delay would fail on a busy machine.)
    """
    claimed: list[Job] = []

    async def due() -> bool:
        claimed.extend(await claim(backend))
        return bool(claimed)

    await eventually(due, "a delayed job came due")
    (job,) = claimed
    assert job.started_at is not None and job.started_at >= job.scheduled_at, job
    return job

"""The backend contract: every storage backend implements `Backend`; nothing else touches it."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence

import anyio

from .job import TERMINAL_STATUSES, Attempt, Job, JobPage, JobStatus, NewJob
from .stats import QueueCounts

OUTCOME_POLL_SECONDS = 0.05
"""How often `wait_for_outcome` looks when a backend has no way to be told."""


class Backend(abc.ABC):
    """Storage for jobs, keeping the rules of DESIGN.md.

    Times are the backend's own (server clock); durations are seconds. Every call on a running
    job names the `Attempt` holding its lease: if that attempt no longer holds it (the lease
    expired and was rescued, or the job was cancelled), the call changes nothing and says so.
    """

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect, and create or migrate the schema if needed."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections; pending writes are flushed first."""

    # Producing

    @abc.abstractmethod
    async def enqueue(self, job: NewJob) -> Job:
        """Store a job; with a `unique_key` already held by a non-terminal job, return that job."""

    @abc.abstractmethod
    async def enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        """Store many jobs in one round trip; returns one job per request, in order.

        A request whose `unique_key` is taken gets the existing job back (its id differs from
        the request's, which is how callers tell duplicates).
        """

    # Consuming

    @abc.abstractmethod
    async def claim(
        self, slots: Mapping[str, int], *, limit: int, lease: float, worker_id: str
    ) -> list[Job]:
        """Move up to `limit` claimable jobs to `running`, at most `slots[q]` from queue `q`.

        Order: priority descending, then `scheduled_at`, then enqueue order. Each claimed job
        has `attempts` incremented and a lease of `lease` seconds.
        """

    @abc.abstractmethod
    async def heartbeat(self, attempts: Sequence[Attempt], *, lease: float) -> set[Attempt]:
        """Extend the leases of `attempts`; return those that no longer hold their job."""

    @abc.abstractmethod
    async def complete(self, attempt: Attempt, result_json: str | None = None) -> bool:
        """Mark the job completed with an optional JSON result; False if the lease was lost."""

    @abc.abstractmethod
    async def fail(
        self, attempt: Attempt, error: str, *, retry_in: float | None
    ) -> JobStatus | None:
        """Record a failed attempt and return the job's new status, or None if the lease was lost.

        With `retry_in` and attempts left, the job becomes `failed`, claimable again `retry_in`
        seconds from now; otherwise it becomes `dead`.
        """

    @abc.abstractmethod
    async def snooze(self, attempt: Attempt, delay: float) -> bool:
        """Return the job to `pending` in `delay` seconds without counting the attempt."""

    @abc.abstractmethod
    async def rescue(self) -> int:
        """Fail every running job whose lease expired ("lease expired"); return how many."""

    @abc.abstractmethod
    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> None:
        """Return when a job may have become claimable in `queues`, or after `timeout` seconds."""

    async def wait_for_outcome(self, job_id: str, timeout: float) -> Job | None:
        """Return the job once it is terminal, or None after `timeout` seconds.

        This default looks every few milliseconds; backends that can be told override it.
        """
        with anyio.move_on_after(timeout):
            while True:
                job = await self.get_job(job_id)
                if job is None or job.status in TERMINAL_STATUSES:
                    return job
                await anyio.sleep(OUTCOME_POLL_SECONDS)
        return None

    # Inspecting and repairing

    @abc.abstractmethod
    async def get_job(self, job_id: str) -> Job | None:
        """The job with this id, or None."""

    @abc.abstractmethod
    async def list_jobs(
        self,
        *,
        queue: str | None = None,
        status: JobStatus | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> JobPage:
        """Jobs newest first (by enqueue order), filtered by queue and status, a page at a time."""

    @abc.abstractmethod
    async def list_queues(self) -> list[str]:
        """Every queue that holds at least one job or is paused, sorted by name."""

    # Pausing

    @abc.abstractmethod
    async def pause(self, queue: str) -> None:
        """Stop claims from `queue` until it is resumed; idempotent.

        A paused queue still accepts jobs. `claim` skips it inside its own atomic step, and
        `wait_for_work` ignores its due jobs, so no claim that starts after `pause` returns
        takes a job from it, in any process.
        """

    @abc.abstractmethod
    async def resume(self, queue: str) -> None:
        """Let claims take jobs from `queue` again (and wake idle workers); idempotent."""

    @abc.abstractmethod
    async def paused_queues(self) -> set[str]:
        """The names of the paused queues."""

    @abc.abstractmethod
    async def stats(self, queue: str) -> QueueCounts:
        """Counts and signals for one queue."""

    @abc.abstractmethod
    async def cancel(self, job_id: str) -> Job | None:
        """Cancel a pending, failed or running job; other states are left as they are.

        A running job becomes `cancelled` at once: its attempt loses the lease, so the worker's
        next heartbeat stops the handler. Returns the job as it now is, or None if unknown.
        """

    @abc.abstractmethod
    async def replay(self, job_id: str) -> Job | None:
        """Reset a `dead` or `cancelled` job to `pending` with attempts cleared.

        Any other status is left unchanged (never a double run), and so is a job whose
        `unique_key` a newer live job now holds. Returns the job, or None.
        """

    @abc.abstractmethod
    async def delete_job(self, job_id: str) -> bool:
        """Delete a job that is not running; True if it was deleted."""

    @abc.abstractmethod
    async def purge(self, queue: str, status: JobStatus) -> int:
        """Delete every job of `queue` in `status` (never `running`); return how many."""

    @abc.abstractmethod
    async def prune(self, older_than: float, statuses: Sequence[JobStatus]) -> int:
        """Delete jobs in terminal `statuses` that finished over `older_than` seconds ago."""

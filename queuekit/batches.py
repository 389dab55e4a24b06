"""Batches: many jobs enqueued as one, with callback jobs run on success, on finish or on the
first dead job, and the batch's counts by state.

A batch is a `Workflow` whose jobs carry its id as `batch_id`. Its callbacks are dependents of
every job of the batch, through edges whose policy says when they run: `on_success` runs once
all completed (`OnFailure.CANCEL`: a dead or cancelled job cancels it, and replaying that job
brings it back), `on_finish` once all finished however they ended (`OnFailure.RUN`), and
`on_dead` at the first dead job (`OnFailure.TRIGGER`; cancelled if none dies). So the backend
decides each callback in the write that ends a job of the batch, as for any dependent: exactly
once, with nothing to poll.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import InvalidOptionError
from .ids import new_job_id
from .job import JobStatus, NewJob, OnFailure, Parent
from .validation import MAX_PARENTS, check_job_id
from .workflows import Part, Workflow, group, jobs_of

BATCH_HEADER = "queuekit-batch"
"""The header naming the batch a callback job was enqueued for (`current_job().batch()`)."""


@dataclass(frozen=True, slots=True)
class BatchCounts:
    """How many of a batch's jobs are in each state, read at one moment."""

    waiting: int = 0
    pending: int = 0
    running: int = 0
    failed: int = 0
    """Failed with attempts left: they run again."""
    completed: int = 0
    dead: int = 0
    cancelled: int = 0

    @classmethod
    def of(cls, counts: dict[JobStatus, int]) -> BatchCounts:
        """The counts from a count per state (states not named count 0)."""
        return cls(**{status.value: count for status, count in counts.items()})

    @property
    def total(self) -> int:
        return self.unfinished + self.completed + self.dead + self.cancelled

    @property
    def unfinished(self) -> int:
        """The jobs that have not finished yet (waiting, pending, running or failed)."""
        return self.waiting + self.pending + self.running + self.failed


def batch(
    *parts: Part,
    on_success: NewJob | None = None,
    on_finish: NewJob | None = None,
    on_dead: NewJob | None = None,
    id: str | None = None,
) -> Workflow:
    """The jobs of `parts` as one batch (each with `batch_id` set), and the callbacks given.

    `on_success` runs once every job of the batch has completed; `on_finish` once every job
    has finished, however it ended; `on_dead` when the first job ends dead (and is cancelled
    if the batch finishes with none dead). A callback reads the batch's counts with
    `await current_job().batch()`. Enqueue the whole with one `queue.enqueue_many(...)`.
    """
    batch_id = new_job_id() if id is None else check_job_id(id)
    members = tuple(
        replace(job, batch_id=batch_id, workflow_id=batch_id)
        for part in parts
        for job in jobs_of(part)
    )
    if not members:
        raise InvalidOptionError("a batch holds at least one job")
    callbacks = [
        _callback(job, members, policy, batch_id)
        for job, policy in (
            (on_success, OnFailure.CANCEL),
            (on_finish, OnFailure.RUN),
            (on_dead, OnFailure.TRIGGER),
        )
        if job is not None
    ]
    return group(*members, *callbacks).with_id(batch_id)


def _callback(job: NewJob, members: tuple[NewJob, ...], policy: OnFailure, batch_id: str) -> NewJob:
    if job.parents:
        raise InvalidOptionError("a batch's callback waits for the batch alone: give it no after=")
    if len(members) > MAX_PARENTS:
        raise InvalidOptionError(f"a batch with callbacks holds at most {MAX_PARENTS} jobs")
    edges = tuple(Parent(member.id, policy) for member in members)
    return replace(job, parents=edges, headers={**job.headers, BATCH_HEADER: batch_id})


__all__ = ["BATCH_HEADER", "BatchCounts", "batch"]

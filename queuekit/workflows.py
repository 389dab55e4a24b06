"""Composing workflows: `chain`, `group` and `chord` of jobs, enqueued in one round trip.

A `Workflow` is the jobs (`NewJob`s, from `queuekit.new_job` or `Task.step`) in parent-first
order, each edge a `Parent` with its `OnFailure` policy, all stamped with one workflow id.
`await queue.enqueue_many(workflow)` stores it whole or not at all; the backend releases each
job when its parents finish (see `Backend`'s "Dependencies").
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TypeAlias

from .errors import InvalidOptionError
from .ids import new_job_id
from .job import NewJob, OnFailure, Parent
from .validation import check_job_id, check_on_failure, check_parents


@dataclass(frozen=True)
class Workflow:
    """Jobs with dependencies among them, in parent-first order; iterate it for the jobs to
    enqueue, each with `workflow_id` set to `id`."""

    jobs: tuple[NewJob, ...]
    id: str = field(default_factory=new_job_id)
    """The workflow id every job is enqueued with (`Job.workflow_id`); composing workflows
    into a bigger one keeps the outermost's."""

    def __iter__(self) -> Iterator[NewJob]:
        return (
            job if job.workflow_id == self.id else replace(job, workflow_id=self.id)
            for job in self.jobs
        )

    def __len__(self) -> int:
        return len(self.jobs)

    @property
    def first(self) -> tuple[NewJob, ...]:
        """The jobs that wait for no other job of the workflow: they start it."""
        inside = {job.id for job in self.jobs}
        return tuple(job for job in self.jobs if not any(p.job_id in inside for p in job.parents))

    @property
    def last(self) -> tuple[NewJob, ...]:
        """The jobs no other job of the workflow waits for: what a `chain` passes on."""
        waited_for = {parent.job_id for job in self.jobs for parent in job.parents}
        return tuple(job for job in self.jobs if job.id not in waited_for)

    def with_id(self, workflow_id: str) -> Workflow:
        """This workflow, enqueued under `workflow_id` instead of a generated id."""
        return replace(self, id=check_job_id(workflow_id))


Part: TypeAlias = "NewJob | Workflow"
"""What the composing functions take: a job, or a workflow made before."""


def group(*parts: Part) -> Workflow:
    """Jobs and workflows that run side by side; any DAG, too: a job given with `after=`
    naming others of the group waits for them (the group puts parents first)."""
    return Workflow(_parent_first([job for part in parts for job in jobs_of(part)]))


def chain(*parts: Part, on_failure: OnFailure = OnFailure.CANCEL) -> Workflow:
    """Each part runs after the one before: its first jobs wait for all the last jobs of the
    previous part, through edges with the `on_failure` policy (`OnFailure`)."""
    policy = check_on_failure(on_failure)
    jobs: list[NewJob] = []
    previous: tuple[NewJob, ...] = ()
    for part in parts:
        workflow = Workflow(jobs_of(part))
        starts = {job.id for job in workflow.first}
        edges = tuple(Parent(job.id, policy) for job in previous)
        jobs.extend(_after(job, edges) if job.id in starts else job for job in workflow.jobs)
        previous = workflow.last
    return group(*jobs)


def chord(
    header: Iterable[Part], callback: Part, *, on_failure: OnFailure = OnFailure.CANCEL
) -> Workflow:
    """The `header` jobs side by side, then `callback` once they have all finished; it reads
    their results in the header's order (`queuekit.ParentResults`, `current_job().parents()`).

    With `on_failure=OnFailure.RUN` the callback runs even if some ended dead or cancelled
    (and sees their errors); with `IGNORE` it runs on the results of those that completed.
    """
    return chain(group(*header), callback, on_failure=on_failure)


def jobs_of(part: Part) -> tuple[NewJob, ...]:
    """The jobs of a part: the job itself, or a workflow's jobs."""
    if isinstance(part, Workflow):
        return part.jobs
    if isinstance(part, NewJob):
        return (part,)
    raise InvalidOptionError(
        "a workflow is made of jobs (queuekit.new_job(...), task.step(...)) and workflows, "
        f"not {type(part).__name__}"
    )


def _after(job: NewJob, edges: tuple[Parent, ...]) -> NewJob:
    """`job` also waiting for `edges` (after its own parents; one already named is kept)."""
    named = {parent.job_id for parent in job.parents}
    parents = job.parents + tuple(edge for edge in edges if edge.job_id not in named)
    return replace(job, parents=check_parents(parents))


def _parent_first(jobs: list[NewJob]) -> tuple[NewJob, ...]:
    """`jobs` in their order, except that each comes after those of them it waits for.

    A job twice, or jobs waiting for each other in a cycle, raise `InvalidOptionError`.
    """
    position: dict[str, int] = {}
    for index, job in enumerate(jobs):
        if job.id in position:
            raise InvalidOptionError(f"job {job.id!r} is in the workflow twice")
        position[job.id] = index
    unmet = [sum(parent.job_id in position for parent in job.parents) for job in jobs]
    children: dict[int, list[int]] = {}
    for index, job in enumerate(jobs):
        for parent in job.parents:
            if parent.job_id in position:
                children.setdefault(position[parent.job_id], []).append(index)
    # The earliest ready job each time: jobs given parent-first keep their order.
    ready = [index for index, count in enumerate(unmet) if count == 0]
    ordered: list[NewJob] = []
    while ready:
        index = heapq.heappop(ready)
        ordered.append(jobs[index])
        for child in children.get(index, ()):
            unmet[child] -= 1
            if unmet[child] == 0:
                heapq.heappush(ready, child)
    if len(ordered) < len(jobs):
        stuck = next(job.id for job, count in zip(jobs, unmet, strict=True) if count)
        raise InvalidOptionError(f"job {stuck!r} waits for itself through a cycle of parents")
    return tuple(ordered)


__all__ = ["Part", "Workflow", "chain", "chord", "group"]

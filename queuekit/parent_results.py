"""What a job reads of its parents: `ParentOutcome`s, and `ParentResults`, the handler
parameter the worker fills with the parents' results; both bounded in size."""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, TypeVar

from .errors import ParentResultsTooLargeError
from .job import JSON, Job, JobStatus, OnFailure
from .jsontext import compact_json

if TYPE_CHECKING:
    from .backend import Backend

T = TypeVar("T")


class _FromParents:
    """The mark of a handler parameter the worker fills with the parents' results."""

    def __repr__(self) -> str:
        return "FROM_PARENTS"


FROM_PARENTS = _FromParents()
ParentResults: TypeAlias = Annotated[Sequence[T], FROM_PARENTS]
"""A handler parameter holding the results of the job's parents that completed, in the order
of its parents (a chain step's one parent; a chord callback's header). Give it the default
`()` so that `task.step(...)` and `enqueue` need not pass it:

    @tasks.task()
    async def total(counts: ParentResults[int] = ()) -> int:
        return sum(counts)

The worker fills it before the handler runs, unless the payload holds it; a typed task's
results come back as the annotation says (a pydantic model...). `current_job().parents()` gives
the whole outcomes, failures included."""


@dataclass(frozen=True, slots=True)
class ParentOutcome:
    """How one of the running job's parents ended (`current_job().parents()`)."""

    job_id: str
    type: str | None
    """The parent's task type; None if the parent was deleted."""
    status: JobStatus | None
    """Completed, dead or cancelled (a job runs once its parents have finished); None if the
    parent was deleted (pruned, say) before this job read it."""
    result: JSON = None
    error: str | None = None
    """Why it ended dead or cancelled (its `last_error`), or "deleted"."""

    @property
    def completed(self) -> bool:
        return self.status == JobStatus.COMPLETED


async def read_parents(backend: Backend, job_id: str, limit: int) -> list[ParentOutcome]:
    """The outcomes of the parents of job `job_id`, in its parents' order, leaving out those
    whose edge says `OnFailure.IGNORE` and that did not complete.

    Their results and errors together, as JSON, must fit in `limit` bytes, else
    `ParentResultsTooLargeError`. Two reads: the job's edges, then its parents in one `get_jobs`.
    """
    job = await backend.get_job(job_id)
    edges = () if job is None or job.parents is None else job.parents
    if not edges:
        return []
    found = {parent.id: parent for parent in await backend.get_jobs([e.job_id for e in edges])}
    outcomes: list[ParentOutcome] = []
    size = 0
    for edge in edges:
        outcome = _outcome(edge.job_id, found.get(edge.job_id))
        if edge.on_failure == OnFailure.IGNORE and not outcome.completed:
            continue
        size += _json_size(outcome.result) + _json_size(outcome.error)
        if size > limit:
            raise ParentResultsTooLargeError(job_id, size, limit)
        outcomes.append(outcome)
    return outcomes


def _outcome(job_id: str, parent: Job | None) -> ParentOutcome:
    if parent is None:
        return ParentOutcome(job_id, None, None, None, "deleted")
    error = None if parent.status == JobStatus.COMPLETED else parent.last_error
    return ParentOutcome(parent.id, parent.type, parent.status, parent.result, error)


def _json_size(value: JSON) -> int:
    if value is None:
        return 0
    return len(compact_json(value).encode("utf-8"))


@functools.cache
def results_parameter(function: Callable[..., Any]) -> str | None:
    """The name of the handler's `ParentResults` parameter, if it has one (the first)."""
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except (NameError, TypeError):
        return None
    for name, hint in hints.items():
        marks = hint.__metadata__ if typing.get_origin(hint) is Annotated else ()
        if name != "return" and any(mark is FROM_PARENTS for mark in marks):
            return name
    return None


__all__ = ["ParentOutcome", "ParentResults", "read_parents", "results_parameter"]

"""The memory backend's dependencies: who waits for whom, and the decisions a parent's end (or
its replay, or its deletion) makes for the jobs waiting for it (`Backend`'s rules)."""

from __future__ import annotations

import abc
import dataclasses
from typing import Any

from ..backend import Backend
from ..errors import UnknownParentError
from ..events import RELEASED, Event, EventKind
from ..job import (
    TERMINAL_STATUSES,
    UNSUCCESSFUL_STATUSES,
    Job,
    JobStatus,
    NewJob,
    OnFailure,
    Parent,
)
from .times import stored_time

Record = dict[str, Any]

DELETED = "deleted"
"""How `last_error` names a parent deleted before it finished."""
NO_PARENT_DIED = "no parent died"
"""The `last_error` of a job waiting for a parent's death (`OnFailure.TRIGGER`) whose
parents all finished otherwise."""


class MemoryDependencies(Backend):
    """Parents and dependents for `MemoryBackend`; every decision is made in the call that
    ends, replays or deletes the parent, as a database's trigger would make it."""

    _jobs: dict[str, Record]
    _dependents: dict[str, dict[str, OnFailure]]
    """Parent id: the jobs waiting (or that waited) for it, in enqueue order, each with its
    edge's policy (so a parent's end never looks through a fan-in's other parents)."""

    @abc.abstractmethod
    def _now(self) -> float: ...

    @abc.abstractmethod
    def _end(self, record: Record, status: JobStatus, now: float) -> None:
        """Put the job in a terminal `status`, without deciding its dependents."""

    @abc.abstractmethod
    def _make_claimable(self, record: Record) -> None: ...

    @abc.abstractmethod
    def _note_expiry(self, record: Record) -> None: ...

    @abc.abstractmethod
    def _hold_unique(self, record: Record) -> bool:
        """Take the job's unique key back for it; False if another live job holds it."""

    def _check_parents(self, new: NewJob) -> None:
        for parent in new.parents:
            if parent.job_id not in self._jobs:
                raise UnknownParentError(parent.job_id)

    def _link(self, record: Record, new: NewJob, now: float) -> None:
        """Record the new job's parents, and decide it if they have all finished (or one has
        failed it already)."""
        record["parents"] = new.parents
        for parent in new.parents:
            self._dependents.setdefault(parent.job_id, {})[record["id"]] = parent.on_failure
        record["open_parents"] = sum(
            self._jobs[parent.job_id]["status"] not in TERMINAL_STATUSES for parent in new.parents
        )
        if new.parents:
            record["status"] = JobStatus.WAITING
            self._decide(record, now)

    def _unlink(self, record: Record) -> None:
        """Forget the edges of a job that goes (deleted, pruned, or an enqueue taken back)."""
        for parent in record["parents"]:
            self._dependents.get(parent.job_id, {}).pop(record["id"], None)

    def _decide(self, record: Record, now: float, by: str | None = None) -> None:
        """Settle a waiting job whose parents changed (`by` the one that just ended):
        cancelled by a failed parent whose edge says cancel; pending at a parent's death if
        its edges say trigger; else, once none is unfinished, pending, or cancelled if its
        edges waited for a death that did not come. Its own dependents follow a cancel."""
        failed = self._failed_parent(record)
        triggered = _waits_for_death(record)
        if failed is not None:
            parent_id, outcome = failed
            self._cancel_waiting(record, f"parent {parent_id} {outcome}", parent_id, now)
        elif triggered and self._parent_died(record):
            self._release(record, now)
        elif record["open_parents"] == 0 and triggered:
            last = by if by is not None else record["parents"][-1].job_id
            self._cancel_waiting(record, NO_PARENT_DIED, last, now)
        elif record["open_parents"] == 0:
            self._release(record, now)

    def _release(self, record: Record, now: float) -> None:
        record.update(status=JobStatus.PENDING, scheduled_at=max(record["scheduled_at"], now))
        self._note_expiry(record)  # its expiry counts from now on: a waiting job never expires
        self._make_claimable(record)

    def _cancel_waiting(self, record: Record, error: str, parent_id: str, now: float) -> None:
        record.update(last_error=error, cancelled_by=parent_id)
        self._end(record, JobStatus.CANCELLED, now)
        self._settle(record, now)

    def _parent_died(self, record: Record) -> bool:
        return any(
            (stored := self._jobs.get(parent.job_id)) is not None
            and stored["status"] == JobStatus.DEAD
            for parent in record["parents"]
        )

    def _failed_parent(self, record: Record) -> tuple[str, str] | None:
        """The first parent, with an edge that says cancel, that ended dead or cancelled, and
        how. A deleted parent is not looked at: its deletion decided what it had to."""
        for parent in record["parents"]:
            stored = self._jobs.get(parent.job_id)
            if (
                parent.on_failure == OnFailure.CANCEL
                and stored is not None
                and stored["status"] in UNSUCCESSFUL_STATUSES
            ):
                return parent.job_id, str(stored["status"])
        return None

    def _settle(self, record: Record, now: float) -> None:
        """The job of `record` has just ended (or is about to be deleted unfinished): decide
        every job waiting for it, and theirs in turn."""
        ended = [record]
        while ended:
            parent = ended.pop()
            failed = parent["status"] in UNSUCCESSFUL_STATUSES or parent["id"] not in self._jobs
            for child, on_failure in self._waiting_for(parent["id"]):
                if failed and on_failure == OnFailure.CANCEL:
                    outcome = str(parent["status"]) if parent["id"] in self._jobs else DELETED
                    child.update(
                        last_error=f"parent {parent['id']} {outcome}", cancelled_by=parent["id"]
                    )
                    self._end(child, JobStatus.CANCELLED, now)
                    self._announce(EventKind.CANCELLED, child, now, error=child["last_error"])
                    ended.append(child)
                else:
                    child["open_parents"] -= 1
                    died = on_failure == OnFailure.TRIGGER and parent["status"] == JobStatus.DEAD
                    if child["open_parents"] == 0 or died:
                        self._decide(child, now, parent["id"])
                        if child["status"] == JobStatus.PENDING:
                            self._announce(EventKind.ENQUEUED, child, now, note=RELEASED)
                        elif child["status"] == JobStatus.CANCELLED:
                            self._announce(
                                EventKind.CANCELLED, child, now, error=child["last_error"]
                            )

    def _unsettle(self, record: Record, now: float) -> None:
        """The job of `record` has just left a terminal state (a replay): the jobs waiting for
        it wait again, and those it cancelled come back to waiting, and theirs in turn."""
        reopened = [record]
        restored: list[Record] = []
        """Jobs brought back by this replay: their unfinished parents are counted once it is
        done, since a parent of theirs may come back after them."""
        while reopened:
            parent_id = reopened.pop()["id"]
            for child_id in self._dependents.get(parent_id, {}):
                child = self._jobs.get(child_id)
                if child is None:
                    continue
                if child["status"] == JobStatus.WAITING:
                    if child not in restored:
                        child["open_parents"] += 1
                elif child["status"] == JobStatus.CANCELLED and (
                    child["cancelled_by"] == parent_id or child["last_error"] == NO_PARENT_DIED
                ):
                    failed = self._failed_parent(child)
                    if failed is not None:
                        failed_id, outcome = failed
                        child.update(
                            cancelled_by=failed_id, last_error=f"parent {failed_id} {outcome}"
                        )
                    elif self._hold_unique(child):
                        child.update(
                            status=JobStatus.WAITING,
                            finished_at=None,
                            last_error=None,
                            cancelled_by=None,
                        )
                        restored.append(child)
                        reopened.append(child)
                        self._announce(EventKind.WAITING, child, now)
        for child in restored:
            child["open_parents"] = sum(
                self._jobs[p.job_id]["status"] not in TERMINAL_STATUSES
                for p in child["parents"]
                if p.job_id in self._jobs
            )

    def _announce(self, kind: EventKind, record: Record, now: float, **more: Any) -> None:
        """Tell this store's subscribers what a parent's end or replay decided for `record`:
        no `Queue` made that change, so no `Queue` announces it."""
        if self.events_wanted():
            job = record["queue"], record["id"], record["type"], stored_time(now)
            self.event_hub().deliver([Event(kind, *job, record["attempts"], **more)])

    def _waiting_for(self, parent_id: str) -> list[tuple[Record, OnFailure]]:
        """The jobs waiting for the parent, each with its edge's policy."""
        return [
            (child, on_failure)
            for child_id, on_failure in self._dependents.get(parent_id, {}).items()
            if (child := self._jobs.get(child_id)) is not None
            and child["status"] == JobStatus.WAITING
        ]

    def _with_edges(self, job: Job, record: Record) -> Job:
        """`job` with its parents and dependents, as `get_job` returns it."""
        return dataclasses.replace(
            job,
            parents=tuple(Parent(p.job_id, p.on_failure) for p in record["parents"]),
            dependents=tuple(
                child for child in self._dependents.get(job.id, {}) if child in self._jobs
            ),
        )


def _waits_for_death(record: Record) -> bool:
    """Whether the job's edges say trigger (all of them do, or none: `check_parents`)."""
    parents: tuple[Parent, ...] = record["parents"]
    return bool(parents) and parents[0].on_failure == OnFailure.TRIGGER

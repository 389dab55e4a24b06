"""`MemoryBackend`: the whole contract in one process's memory, for tests and development."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from ..backend import LEASE_EXPIRED, Backend, Batch, JobFilter, Rescued, new_lease_token
from ..errors import JobExistsError, JobRunningError, UnknownParentError
from ..job import (
    CLAIMABLE_STATUSES,
    TERMINAL_STATUSES,
    UNSUCCESSFUL_STATUSES,
    Attempt,
    Job,
    JobStatus,
    NewJob,
)
from ..retry import next_retry
from . import flow
from .history import ended_attempt
from .losses import LossWaiters
from .memory_activity import MemoryActivity
from .memory_dependencies import MemoryDependencies
from .memory_expiry import MemoryExpiry, expiry_of
from .memory_flow import MemoryFlow, MemoryLimits
from .memory_keys import MemoryKeys, keeps_key
from .memory_leases import MemoryLeases
from .memory_listing import MemoryReads, batch_of
from .memory_workers import MemoryWorkers
from .rows import job_from_row
from .waiters import KeyedWaiters, wait_at_most

Record = dict[str, Any]
"""A stored job: the same fields a database row has, times as epoch seconds."""

ACTIVE = frozenset({JobStatus.WAITING, JobStatus.PENDING, JobStatus.FAILED, JobStatus.RUNNING})


class _Lane:
    """One queue's claimable jobs: due ones by claim order, delayed ones by due time.

    Entries go stale when their job changes; each carries the job's token and is skipped
    unless the token still matches, so no entry is ever searched for and removed.
    """

    __slots__ = ("delayed", "ready")

    def __init__(self) -> None:
        self.ready: list[tuple[int, float, int, int, str]] = []
        self.delayed: list[tuple[float, int, str]] = []


class MemoryBackend(
    MemoryExpiry,
    MemoryKeys,
    MemoryDependencies,
    MemoryReads,
    MemoryLimits,
    MemoryActivity,
    MemoryWorkers,
    MemoryLeases,
    Backend,
):
    """Jobs in a dict, ordered by heaps; wakes waiters with events, never by polling."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._last_now = 0.0
        self._jobs: dict[str, Record] = {}
        self._lanes: dict[str, _Lane] = {}
        self._unique = {}
        self._debounce = {}
        self._dependents = {}
        self._paused: set[str] = set()
        self._seq = 0
        self._token = 0
        self._work_waiters = KeyedWaiters()
        self._outcome_waiters = KeyedWaiters()
        self._losses = LossWaiters()
        self._flow = MemoryFlow()
        self._expiring: list[tuple[float, str]] = []
        self._workers = {}
        self._activity = {}

    @classmethod
    def from_url(cls, url: str) -> MemoryBackend:
        return cls()

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def _now(self) -> float:
        # Never step backwards, even if the wall clock does.
        self._last_now = max(self._last_now, self._clock())
        return self._last_now

    # Producing

    async def enqueue(self, job: NewJob) -> Job:
        return self._insert(job, self._now(), [])

    async def enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        now = self._now()
        added: list[str] = []
        self._rewrites = []
        try:
            return [self._insert(job, now, added) for job in jobs]
        except (JobExistsError, UnknownParentError):
            # All or none, as a transaction would: take back the jobs this call added, and
            # the payloads and times it gave the holders of its keys.
            for job_id in added:
                self._remove(self._jobs[job_id])
            self._undo_rewrites()
            raise
        finally:
            self._rewrites = None

    def _insert(self, new: NewJob, now: float, added: list[str]) -> Job:
        """Store `new` (its id goes on `added`), or return the holder of its key."""
        self._check_parents(new)
        scheduled_at = new.run_at.timestamp() if new.run_at is not None else now + new.delay
        holder = self._found(new, scheduled_at, now)
        if holder is not None:
            return job_from_row(holder)
        if new.id in self._jobs:
            raise JobExistsError(new.id)
        self._seq += 1
        debounce_until = None if new.debounce_max is None else now + new.debounce_max
        if debounce_until is not None:
            scheduled_at = min(scheduled_at, debounce_until)
        record: Record = {
            "seq": self._seq,
            "id": new.id,
            "queue": new.queue,
            "type": new.type,
            "payload": new.payload_json,
            "priority": new.priority,
            "status": JobStatus.PENDING,
            "attempts": 0,
            "max_attempts": new.max_attempts,
            "created_at": now,
            "scheduled_at": scheduled_at,
            "started_at": None,
            "finished_at": None,
            "lease_expires_at": None,
            "worker_id": None,
            "last_error": None,
            "unique_key": new.unique_key,
            "unique_states": new.unique_states,
            "unique_until": None if new.unique_for is None else now + new.unique_for,
            "debounce_key": new.debounce_key,
            "debounce_until": debounce_until,
            "batch_id": new.batch_id,
            "result": None,
            "headers": new.headers_json,
            "limit_key": new.limit_key,
            "lease_token": None,
            "history": [],
            "progress": None,
            "progress_note": None,
            "output": None,
            "token": 0,
            "expires_at": expiry_of(new, now),
            "workflow_id": new.workflow_id,
            "parents": (),
            "open_parents": 0,
            "cancelled_by": None,
        }
        self._jobs[new.id] = record
        added.append(new.id)
        self._hold_keys(record)
        self._note_expiry(record)
        if new.parents:
            self._link(record, new, now)
        else:
            self._make_claimable(record)
        return job_from_row(record)

    def _make_claimable(self, record: Record) -> None:
        self._token += 1
        record["token"] = token = self._token
        lane = self._lanes.setdefault(record["queue"], _Lane())
        heapq.heappush(lane.delayed, (record["scheduled_at"], token, record["id"]))
        self._work_waiters.wake([record["queue"]])

    def _wake(self, queue: str) -> None:
        self._work_waiters.wake([queue])

    def _is_current(self, job_id: str, token: int) -> bool:
        record = self._jobs.get(job_id)
        return (
            record is not None
            and record["token"] == token
            and record["status"] in CLAIMABLE_STATUSES
        )

    # Consuming

    async def claim(
        self, slots: Mapping[str, int], *, limit: int, lease: float, worker_id: str
    ) -> list[Job]:
        now = self._now()
        self._expire_due(now)
        free = {
            queue: count
            for queue, count in slots.items()
            if count > 0 and queue not in self._paused
        }
        for queue in free:
            self._promote_due(queue, now)
        start = partial(
            self._start, now=now, lease=lease, worker_id=worker_id, token=new_lease_token()
        )
        claimed: list[Job] = []
        for queue in [queue for queue in free if self._flow.applies(queue, now)]:
            lane = self._lanes.get(queue)
            count = min(free.pop(queue), limit - len(claimed))
            if lane is None or count <= 0:
                continue
            candidates = [
                flow.Candidate(job_id, self._jobs[job_id]["limit_key"], seq)
                for *_, seq, token, job_id in sorted(lane.ready)
                if self._is_current(job_id, token)
            ]
            chosen = self._flow.choose(queue, count, now, candidates, self._jobs.values())
            claimed.extend(start(self._jobs[candidate.job_id]) for candidate in chosen)
        while len(claimed) < limit:
            heads = [
                (lane.ready[0], queue)
                for queue in free
                if free[queue] > 0 and (lane := self._lanes.get(queue)) and self._clean_ready(lane)
            ]
            if not heads:
                break
            _, queue = min(heads)
            *_, job_id = heapq.heappop(self._lanes[queue].ready)
            free[queue] -= 1
            claimed.append(start(self._jobs[job_id]))
        return claimed

    def _start(
        self, record: Record, *, now: float, lease: float, worker_id: str, token: str
    ) -> Job:
        """Claim the job of `record` (its stale ready entry is skipped from then on)."""
        record.update(
            status=JobStatus.RUNNING,
            attempts=record["attempts"] + 1,
            started_at=now,
            lease_expires_at=now + lease,
            worker_id=worker_id,
            lease_token=token,
            token=0,
        )
        return job_from_row(record)

    def _promote_due(self, queue: str, now: float) -> None:
        lane = self._lanes.get(queue)
        if lane is None:
            return
        while lane.delayed and lane.delayed[0][0] <= now:
            scheduled_at, token, job_id = heapq.heappop(lane.delayed)
            if self._is_current(job_id, token):
                record = self._jobs[job_id]
                entry = (-record["priority"], scheduled_at, record["seq"], token, job_id)
                heapq.heappush(lane.ready, entry)

    def _clean_ready(self, lane: _Lane) -> bool:
        """Drop stale heads; True if a claimable job is at the top."""
        while lane.ready and not self._is_current(lane.ready[0][4], lane.ready[0][3]):
            heapq.heappop(lane.ready)
        return bool(lane.ready)

    def _holding(self, attempt: Attempt) -> Record | None:
        record = self._jobs.get(attempt.job_id)
        if (
            record is None
            or record["status"] != JobStatus.RUNNING
            or record["lease_token"] != attempt.token
        ):
            return None
        return record

    async def complete(self, attempt: Attempt, result_json: str | None = None) -> JobStatus | None:
        record = self._holding(attempt)
        if record is None:
            return None
        record["result"] = result_json
        ended_attempt(record, JobStatus.COMPLETED, None, now := self._now())
        self._finish(record, JobStatus.COMPLETED, now)
        return JobStatus.COMPLETED

    async def fail(
        self, attempt: Attempt, error: str, *, retry_in: float | None
    ) -> JobStatus | None:
        record = self._holding(attempt)
        if record is None:
            return None
        return self._fail(record, error, retry_in, self._now())

    def _fail(self, record: Record, error: str, retry_in: float | None, now: float) -> JobStatus:
        record["last_error"] = error
        ended_attempt(record, JobStatus.DEAD if retry_in is None else JobStatus.FAILED, error, now)
        if retry_in is None:
            self._finish(record, JobStatus.DEAD, now)
            return JobStatus.DEAD
        record.update(status=JobStatus.FAILED, scheduled_at=now + retry_in, lease_expires_at=None)
        self._make_claimable(record)
        return JobStatus.FAILED

    def _finish(self, record: Record, status: JobStatus, now: float) -> None:
        self._end(record, status, now)
        self._settle(record, now)

    def _end(self, record: Record, status: JobStatus, now: float) -> None:
        if record["queue"] in self._flow.limits:
            self._work_waiters.wake([record["queue"]])  # a limited slot may have come free
        record.update(status=status, finished_at=now, lease_expires_at=None)
        self._outcome_waiters.wake([record["id"]])

    async def snooze(self, attempt: Attempt, delay: float) -> JobStatus | None:
        record = self._holding(attempt)
        if record is None:
            return None
        ended_attempt(record, JobStatus.PENDING, None, now := self._now())
        record.update(
            status=JobStatus.PENDING,
            attempts=record["attempts"] - 1,
            scheduled_at=now + delay,
            lease_expires_at=None,
        )
        self._make_claimable(record)
        return JobStatus.PENDING

    async def rescue(self) -> Rescued:
        now = self._now()
        expired = [
            record
            for record in self._jobs.values()
            if record["status"] == JobStatus.RUNNING and record["lease_expires_at"] <= now
        ]
        # The rule of `Backend.rescue`, which here can be `next_retry` itself.
        statuses = [
            self._fail(record, LEASE_EXPIRED, next_retry(job_from_row(record), 0.0), now)
            for record in expired
        ]
        dead = statuses.count(JobStatus.DEAD)
        return Rescued(failed=len(statuses) - dead, dead=dead)

    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> None:
        now = self._now()
        due = [
            lane.delayed[0][0]
            for queue in queues
            if queue not in self._paused
            and (lane := self._lanes.get(queue)) is not None
            and lane.delayed
        ]
        if due:
            timeout = max(0.0, min(timeout, min(due) - now))
        with self._work_waiters.registered(queues) as event:
            await wait_at_most(event, timeout)

    async def wait_for_outcome(self, job_id: str, timeout: float) -> Job | None:
        record = self._jobs.get(job_id)
        if record is not None and record["status"] not in TERMINAL_STATUSES:
            with self._outcome_waiters.registered([job_id]) as event:
                await wait_at_most(event, timeout)
            record = self._jobs.get(job_id)
        if record is None or record["status"] not in TERMINAL_STATUSES:
            return None
        return job_from_row(record)

    # Inspecting and repairing

    async def pause(self, queue: str) -> None:
        self._paused.add(queue)

    async def resume(self, queue: str) -> None:
        if queue in self._paused:
            self._paused.discard(queue)
            self._work_waiters.wake([queue])

    async def paused_queues(self) -> set[str]:
        return set(self._paused)

    async def cancel(self, job_id: str) -> Job | None:
        return self._on_job(job_id, self._cancel)

    async def replay(self, job_id: str) -> Job | None:
        return self._on_job(job_id, self._replay)

    async def run_now(self, job_id: str) -> Job | None:
        return self._on_job(job_id, self._run_now)

    def _on_job(self, job_id: str, act: Callable[[Record], bool]) -> Job | None:
        """Apply `act` to the job, if there is one; return the job as it is then."""
        record = self._jobs.get(job_id)
        if record is None:
            return None
        act(record)
        return job_from_row(record, with_history=True)

    def _cancel(self, record: Record) -> bool:
        if record["status"] not in ACTIVE:
            return False
        if record["status"] == JobStatus.RUNNING:
            self._losses.wake([record["id"]])
        ended_attempt(record, JobStatus.CANCELLED, None, now := self._now())
        self._finish(record, JobStatus.CANCELLED, now)
        return True

    def _replay(self, record: Record) -> bool:
        if record["status"] not in UNSUCCESSFUL_STATUSES:
            return False
        if not self._hold_unique(record):
            return False
        record.update(
            status=JobStatus.PENDING,
            attempts=0,
            scheduled_at=(now := self._now()),
            started_at=None,
            finished_at=None,
            worker_id=None,
            result=None,
            expires_at=None,
            cancelled_by=None,
        )
        self._make_claimable(record)
        self._unsettle(record, now)
        return True

    def _run_now(self, record: Record) -> bool:
        now = self._now()
        if record["status"] not in CLAIMABLE_STATUSES or record["scheduled_at"] <= now:
            return False
        record["scheduled_at"] = now
        self._make_claimable(record)  # its entry among the delayed goes stale
        return True

    async def delete_job(self, job_id: str) -> bool:
        record = self._jobs.get(job_id)
        if record is None:
            return False
        if not self._delete(record):
            raise JobRunningError(job_id)
        return True

    def _delete(self, record: Record) -> bool:
        if record["status"] == JobStatus.RUNNING:
            return False
        self._remove(record)
        return True

    def _remove(self, record: Record) -> None:
        """Delete the job; if it had not finished, the jobs waiting for it count it failed."""
        del self._jobs[record["id"]]
        self._let_go(record)
        self._unlink(record)
        if record["status"] not in TERMINAL_STATUSES:
            self._settle(record, self._now())
        self._dependents.pop(record["id"], None)

    async def replay_batch(self, where: JobFilter, *, after: int, limit: int) -> Batch:
        return self._each(where, after, limit, self._replay)

    async def cancel_batch(self, where: JobFilter, *, after: int, limit: int) -> Batch:
        return self._each(where, after, limit, self._cancel)

    async def delete_batch(self, where: JobFilter, *, after: int, limit: int) -> Batch:
        return self._each(where, after, limit, self._delete)

    async def run_now_batch(self, where: JobFilter, *, after: int, limit: int) -> Batch:
        return self._each(where, after, limit, self._run_now)

    def _each(
        self, where: JobFilter, after: int, limit: int, act: Callable[[Record], bool]
    ) -> Batch:
        """Apply `act` to the next `limit` jobs matching `where`, oldest first."""
        chosen = batch_of(self._jobs.values(), where, after, limit)
        changed = sum(act(record) for record in chosen)
        return Batch(changed, chosen[-1]["seq"] if len(chosen) == limit else None)

    async def prune(self, older_than: float, statuses: Sequence[JobStatus]) -> int:
        now = self._now()
        doomed = [
            record
            for record in self._jobs.values()
            if record["status"] in statuses
            and record["finished_at"] <= now - older_than
            and not keeps_key(record, now)
        ]
        for record in doomed:
            self._remove(record)
        return len(doomed)

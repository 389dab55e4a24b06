"""The backend contract: every storage backend implements `Backend`; nothing else touches it."""

from __future__ import annotations

import abc
import secrets
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Self

import anyio

from .activity import DEPTH_CAP, ActivityCounts, Minute
from .batches import BatchCounts
from .events import Event, EventHub, EventSink
from .job import TERMINAL_STATUSES, Attempt, Job, JobPage, JobStatus, NewJob
from .limits import Limits, LimitUsage
from .progress import ProgressUpdate
from .search import NO_SEARCH, JobSearch
from .stats import QueueCounts

OUTCOME_POLL_SECONDS = 0.05
"""How often `wait_for_outcome` looks when a backend has no way to be told."""
EXPIRE_BATCH = 500
"""Jobs `expire` cancels per statement or script, so none holds a lock for long."""
EXPIRED = "expired"
"""The `last_error` of a job cancelled because it had not started by its `expires_at`."""
LEASE_EXPIRED = "lease expired"
"""The `last_error` of a job `rescue` took back from a worker that lost its lease."""


def new_lease_token() -> str:
    """A fresh fencing token for the jobs of one claim call: random, so never reused for a job
    id (a counter could restart after a delete and a re-enqueue with the same id)."""
    return secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class JobFilter:
    """The jobs a bulk operation acts on: those in `status`, of `queue` and `type` if given."""

    status: JobStatus
    queue: str | None = None
    type: str | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """What one batch of a bulk operation did."""

    changed: int
    """How many jobs it replayed, cancelled, made due or deleted."""
    after: int | None
    """Pass it back as `after` for the next batch; None when nothing is left to do."""


@dataclass(frozen=True, slots=True)
class Rescued:
    """What `rescue` did: jobs it failed to run again, and jobs it moved to dead."""

    failed: int
    dead: int

    @property
    def total(self) -> int:
        return self.failed + self.dead


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """A worker's entry in the registry as a backend keeps it (`queuekit.registry` reads it)."""

    worker_id: str
    info: str
    """What the worker wrote of itself: JSON text the backend stores and never reads."""
    started_at: datetime
    """Its first beat, by the backend's clock."""
    last_seen: datetime
    """Its latest beat, by the backend's clock."""
    draining: bool
    """An operator asked it to drain."""


class Backend(abc.ABC):
    """Storage for jobs, keeping the rules of DESIGN.md.

    Times are the backend's own (server clock); durations are seconds. Every call on a running
    job names the `Attempt` holding its lease and is fenced on its token (never on the attempt
    count, which replay resets): if that claim no longer holds the job (the lease expired and
    was rescued, or the job was cancelled, and perhaps replayed and claimed again), the call
    changes nothing and says so: `complete`, `fail` and `snooze` return None instead of the
    job's new status, `heartbeat` returns the attempt. A job keeps the `worker_id` of its
    latest claim after the attempt ends.

    The write that ends an attempt (`complete`, `fail`, `snooze`, `rescue`, `cancel` of a
    running job, `complete_in_transaction`) appends its record to the job's history in the
    same statement or script (`queuekit.backends.history`; bounded by `HISTORY_LIMIT` and
    `HISTORY_ERROR_CHARS`); a fenced-out call records nothing, and a replay keeps it all.
    `get_job`, `cancel` and `replay` return jobs with their `history`; other calls leave it
    None (a claim never parses it).

    Dependencies (`NewJob.parents`; the rules in docs/workflows.md): a job with parents is
    stored `waiting` unless they all finished; each is stored or earlier in the same call (else
    `UnknownParentError`, and nothing of the call is stored). The write that ends a parent
    (completed, dead, cancelled: by any call) or deletes it unfinished decides its waiting
    dependents: cancelled at once by a failed parent whose edge says `OnFailure.CANCEL`
    (`last_error` "parent <id> dead|cancelled|deleted"; theirs follow), else `pending` once no
    parent is unfinished. A replay makes them wait for it again, and brings back those it
    cancelled. A waiting job is never claimed, expired or made due by `run_now`. No `Queue`
    sees those decisions, so the backend announces each (`queuekit.events`): `enqueued` with
    note "released", `cancelled` with its `last_error`, `waiting` when brought back; at its
    clock's time, published by the deciding write's transport (or this process's hub).

    Unique keys (`NewJob.unique_key`; the rules in docs/uniqueness.md): at most one job of a
    queue holds a key. A job holds it while live (waiting, pending, running, failed), and once
    finished in one of its `unique_states` for `unique_for` seconds from its enqueue (or while
    it is stored, when it has no period; `prune` keeps it until its period is over). An enqueue
    that finds the holder stores nothing and returns it, rewritten first if `on_conflict` is
    `OnConflict.REPLACE` and it is in `REPLACEABLE_STATUSES`: its payload and `scheduled_at`
    (the new request's) change, nothing else. A holder whose hold is over is let go by the
    enqueue that finds it, in the same write. A debounce key (`NewJob.debounce_key`) is held by
    at most one unstarted (waiting or pending) job of a queue: an enqueue that finds it gives
    it the new payload and `scheduled_at` = least(the new request's, its `debounce_until`)
    where `debounce_until` = its enqueue time + its `debounce_max`. A replay that would make a
    second holder of either key is refused as `replay` says. `enqueue_many` acts as the same
    enqueues one by one, in order, in its one round trip.

    Batches (`queuekit.batch`): `batch_counts` counts the jobs of a `batch_id` by state. A
    batch's callbacks are dependents with `OnFailure.TRIGGER` edges (on_dead) or the usual
    ones: a `TRIGGER` dependent is released at once by a parent that ends dead and cancelled
    ("no parent died") once all its parents finished otherwise; a replay of any of its
    parents brings it back to waiting from that cancel.

    Whether a failed attempt is retried is the worker's decision (`queuekit.retry.next_retry`);
    the backend applies it. Only `rescue`, which no worker takes part in, applies that rule
    itself.
    """

    @classmethod
    @abc.abstractmethod
    def from_url(cls, url: str) -> Self:
        """The backend a URL of its scheme describes (see `queuekit.connect`), not yet open;
        a malformed URL or an unknown option raises `InvalidURLError`."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect, and create or migrate the schema if needed."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections; pending writes are flushed first."""

    async def migrate(self) -> list[int]:
        """Create or upgrade the schema on an open backend; return the versions this call
        applied. Safe to run from many processes at once. This default has no schema."""
        return []

    # Producing

    @abc.abstractmethod
    async def enqueue(self, job: NewJob) -> Job:
        """Store a job; with a `unique_key` or `debounce_key` already held, return the holder
        (rewritten as the class docstring says) instead.

        An id another job has raises `JobExistsError`.
        """

    @abc.abstractmethod
    async def enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        """Store many jobs in one round trip; returns one job per request, in order.

        A request whose `unique_key` or `debounce_key` is held gets the holder back (its id
        differs from the request's, which is how callers tell duplicates). An id another job
        has (or two requests share) raises `JobExistsError`, and no job of that id's queue is
        stored.
        """

    # Consuming

    @abc.abstractmethod
    async def claim(
        self, slots: Mapping[str, int], *, limit: int, lease: float, worker_id: str
    ) -> list[Job]:
        """Move up to `limit` claimable jobs to `running`, at most `slots[q]` from queue `q`.

        Order: priority descending, then `scheduled_at`, then enqueue order. Each claimed job
        has `attempts` incremented, a lease of `lease` seconds, `worker_id` set and a lease
        token from `new_lease_token()`, made once per call. A job that never started and whose
        `expires_at` has passed by the backend's clock is never claimed (see `expire`).
        """

    @abc.abstractmethod
    async def heartbeat(
        self,
        attempts: Sequence[Attempt],
        *,
        lease: float,
        progress: Mapping[Attempt, ProgressUpdate] | None = None,
    ) -> set[Attempt]:
        """Extend the leases of `attempts`; return those that no longer hold their job.

        `progress` holds what some of them reported since their last heartbeat: written in
        the same statement or script, fenced like the lease (a lost attempt's is dropped).
        """

    async def wait_for_loss(self, jobs: Sequence[Job], timeout: float) -> None:
        """Return when one of these claimed jobs may have lost its lease (it was cancelled),
        or after `timeout` seconds; the caller heartbeats then to learn which.

        Waking early is always safe; a backend that cannot be told (this default) waits out
        `timeout`. A backend that pushes cancels returns as soon as its means of being told
        (a LISTEN, a subscription) first comes up or comes back, since a cancel made before
        it was not heard.
        """
        await anyio.sleep(timeout)

    @abc.abstractmethod
    async def complete(self, attempt: Attempt, result_json: str | None = None) -> JobStatus | None:
        """Mark the job `completed` with an optional JSON result."""

    @abc.abstractmethod
    async def fail(
        self, attempt: Attempt, error: str, *, retry_in: float | None
    ) -> JobStatus | None:
        """Record a failed attempt with `error` and apply the caller's decision.

        With `retry_in`, the job becomes `failed`, claimable again `retry_in` seconds from now;
        with None, `dead`. The caller passes a `retry_in` only while attempts are left, as
        `queuekit.retry.next_retry` decides: this applies what it is given.
        """

    @abc.abstractmethod
    async def snooze(self, attempt: Attempt, delay: float) -> JobStatus | None:
        """Return the job to `pending` in `delay` seconds without counting the attempt."""

    @abc.abstractmethod
    async def rescue(self) -> Rescued:
        """Fail every running job whose lease expired, with `LEASE_EXPIRED`; return how
        many went `failed` and how many `dead`. The rule of `next_retry` with a wait of 0:
        `failed`, claimable now, while attempts are left, else `dead`. Each backend writes it
        in its one statement or script (they cite this docstring), as rescuing must not cost
        a round trip per job."""

    @abc.abstractmethod
    async def expire(self) -> int:
        """Cancel every job whose `expires_at` has passed and that never started (`pending`
        with no `started_at`), with error "expired", as `cancel` would. In bounded batches,
        like `prune`. Claims never start such a job either (see `claim`); a backend whose
        claims cancel the expired jobs they meet (memory, Redis) counts them in the store.
        Returns how many jobs expiry cancelled since the last call (in any process), by this
        sweep or by claims, so that the caller announces each once."""

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

    # Events (`queuekit.events`): the defaults reach this backend object's own subscribers,
    # all an in-process store (memory) has; a store other processes share overrides them.

    _event_hub: EventHub | None = None

    def event_hub(self) -> EventHub:
        """The subscribers of this store in this process."""
        if self._event_hub is None:
            self._event_hub = EventHub()
        return self._event_hub

    def events_wanted(self) -> bool:
        """Whether an event published now may reach a subscriber: False only when this
        backend knows that none listens (this default: none in this process)."""
        return bool(self._event_hub is not None and self._event_hub.sinks)

    async def publish_events(self, events: Sequence[Event]) -> None:
        """Deliver `events`, in order, to every subscriber of this store: best effort, with
        no replay for a subscriber that was not listening."""
        self.event_hub().deliver(events)

    async def subscribe_events(self, sink: EventSink) -> None:
        """Put in `sink` every event published to this store once this returns, until
        `unsubscribe_events`; events lost on the way (a dropped connection) put a gap.

        A store other processes share returns once every publisher can know that this
        process listens (`backends.audience`): a publisher that found nobody listening
        publishes nothing for `UNHEARD_SECONDS`."""
        self.event_hub().sinks.add(sink)

    async def unsubscribe_events(self, sink: EventSink) -> None:
        hub = self.event_hub()
        hub.sinks.discard(sink)
        if not hub.sinks:
            await self._stop_events()

    async def _stop_events(self) -> None:  # noqa: B027 (a hook: most backends need none)
        """The last subscriber in this process is gone: stop listening for events (this
        default has nothing to stop)."""

    # Inspecting and repairing

    async def get_job(self, job_id: str) -> Job | None:
        """The job with this id, with its `history`, `parents` and `dependents`, or None."""
        jobs = await self.get_jobs([job_id])
        return jobs[0] if jobs else None

    @abc.abstractmethod
    async def get_jobs(self, job_ids: Sequence[str]) -> list[Job]:
        """The jobs with these ids that exist, in the order asked, as `get_job` reads them, in
        one round trip."""

    @abc.abstractmethod
    async def list_jobs(
        self,
        *,
        queue: str | None = None,
        status: JobStatus | None = None,
        type: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        search: JobSearch = NO_SEARCH,
    ) -> JobPage:
        """Jobs newest first (by enqueue order), filtered by queue, status and type, a page at
        a time; a page holds `limit` jobs unless it is the last.

        `search` narrows them further, by error text and creation time: those terms are
        checked within the jobs the other filters pick, so a rare match may read many jobs.
        A backend may bound that work per call (Redis does), returning a shorter page with a
        `next_cursor`: only a page without one is the last.
        """

    @abc.abstractmethod
    async def batch_counts(self, batch_id: str) -> BatchCounts:
        """How many jobs of batch `batch_id` are in each state, read at one moment."""

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

    # Flow control (the rule every claim applies is `queuekit.backends.flow.choose`)

    @abc.abstractmethod
    async def set_limits(self, queue: str, limits: Limits | None) -> None:
        """Store the queue's limits (None removes them); every claim from then on applies them.

        A queue with limits is claimed under them inside `claim`'s own atomic step, so they
        hold across every process. Its running jobs count until they stop running, or until
        the rescuer takes back an expired lease.
        """

    @abc.abstractmethod
    async def get_limits(self) -> dict[str, Limits]:
        """Every queue's limits, by queue name."""

    @abc.abstractmethod
    async def hold(self, queue: str, key: str | None, seconds: float) -> None:
        """Claim no job of `key` in `queue` (with None, none of the queue) for `seconds` from
        the backend's now; a hold that ends later already stays as it is. A hold applies to
        a queue without limits too (and gives it none: `get_limits` does not list it)."""

    @abc.abstractmethod
    async def limit_usage(self, queue: str) -> LimitUsage:
        """How much of the queue's limits is in use now."""

    @abc.abstractmethod
    async def stats(self, queue: str) -> QueueCounts:
        """Counts and signals for one queue."""

    # Activity by minute (written by `queuekit.activity.ActivityRecorder`)

    @abc.abstractmethod
    async def add_activity(
        self, counts: Sequence[ActivityCounts], *, keep: float, depth_cap: int = DEPTH_CAP
    ) -> None:
        """Add `counts` (one entry per queue) to their queues' current minute by the backend's
        clock, in one round trip, and forget those queues' minutes older than `keep` seconds.
        Adds from many processes at once all count. The write that creates a queue's minute,
        and only that one in the whole fleet, then samples the queue's depth into it: its ready
        jobs (claimable, due by now), counting at most `depth_cap`."""

    @abc.abstractmethod
    async def activity(self, queue: str, minutes: int) -> list[Minute]:
        """The queue's minutes that saw activity among the last `minutes` (the current one
        included), oldest first."""

    @abc.abstractmethod
    async def cancel(self, job_id: str) -> Job | None:
        """Cancel a waiting, pending, failed or running job; other states are left as they are.

        A running job becomes `cancelled` at once: its attempt loses the lease, and
        `wait_for_loss` wakes the worker holding it (where the backend can push), whose
        heartbeat then stops the handler. Returns the job as it now is, or None if unknown.
        """

    @abc.abstractmethod
    async def replay(self, job_id: str) -> Job | None:
        """Reset a `dead` or `cancelled` job to `pending` with attempts and worker cleared.

        Any other status is left unchanged (never a double run), and so is a job whose
        `unique_key` or `debounce_key` another job now holds. Returns the job, or None.
        """

    @abc.abstractmethod
    async def run_now(self, job_id: str) -> Job | None:
        """Make a `pending` job scheduled later, or a `failed` one waiting for its retry, due
        now by the backend's clock, its attempts kept, and wake idle workers as an enqueue
        does. Any other job (running, finished, or due already) is left as it is.

        Returns the job as it now is (its status and `scheduled_at` say which), or None.
        """

    @abc.abstractmethod
    async def delete_job(self, job_id: str) -> bool:
        """Delete a job that is not running: True if deleted, False if there is no such job.

        A running job is left as it is and raises `JobRunningError`.
        """

    @abc.abstractmethod
    async def prune(self, older_than: float, statuses: Sequence[JobStatus]) -> int:
        """Delete jobs in terminal `statuses` that finished over `older_than` seconds ago, in
        bounded batches (no statement or script holds a lock for long)."""

    # Bulk operations, one bounded batch per call: each call acts on at most `limit` jobs
    # matching `where` that come after `after` in enqueue order (start with 0), in one
    # statement or script, and says where the next call goes on (`Batch.after`).

    @abc.abstractmethod
    async def replay_batch(self, where: JobFilter, *, after: int, limit: int) -> Batch:
        """Replay matching `dead` or `cancelled` jobs as `replay` does: a job whose
        `unique_key` a live job holds stays, and of several with one key only one is replayed."""

    @abc.abstractmethod
    async def cancel_batch(self, where: JobFilter, *, after: int, limit: int) -> Batch:
        """Cancel matching `waiting`, `pending`, `failed` or `running` jobs as `cancel` does."""

    @abc.abstractmethod
    async def delete_batch(self, where: JobFilter, *, after: int, limit: int) -> Batch:
        """Delete matching jobs that are not `running`."""

    @abc.abstractmethod
    async def run_now_batch(self, where: JobFilter, *, after: int, limit: int) -> Batch:
        """Make matching `pending` or `failed` jobs that are not due yet due now, as `run_now`
        does."""

    # The worker registry: entries the workers write of themselves (queuekit.presence) and
    # operators read (queuekit.registry). Times are the backend's, taken inside the write.

    @abc.abstractmethod
    async def beat_worker(self, worker_id: str, info: str, *, ttl: float) -> bool:
        """Store the worker's `info` (JSON text), seen now and listed until `ttl` seconds from
        now; its first beat sets `started_at`. Return whether a drain was requested.

        Each beat also deletes the entries of workers silent for over twice their `ttl`, so
        the long dead are cleaned up without a leader.
        """

    @abc.abstractmethod
    async def list_workers(self) -> list[WorkerRecord]:
        """The workers whose last beat is within its `ttl`, by id."""

    @abc.abstractmethod
    async def drain_worker(self, worker_id: str) -> bool:
        """Flag a listed worker as asked to drain (its next beat returns True); False, and
        nothing changed, if no such worker is listed."""

    @abc.abstractmethod
    async def remove_worker(self, worker_id: str) -> None:
        """Delete the worker's entry (it is exiting); idempotent."""


class FencedBackend(Backend):
    """A backend that can complete a job inside the caller's own transaction, fenced."""

    @abc.abstractmethod
    def transaction(self, connection: object) -> AbstractAsyncContextManager[None]:
        """A transaction on `connection` (the caller's own driver connection) for the block:
        committed at its end, rolled back if it raises. A connection already in a transaction
        (it must commit at the block's end) or of another kind raises `InvalidOptionError`."""

    @abc.abstractmethod
    async def complete_in_transaction(
        self, connection: object, attempt: Attempt, result_json: str | None
    ) -> bool:
        """Mark the job `completed` as `complete` does, on `connection` inside the transaction
        `transaction` opened: False (nothing changed) if `attempt` no longer holds the job."""


class TransactionalBackend(Backend):
    """A backend that can also enqueue on the caller's own connection, in their transaction."""

    @abc.abstractmethod
    async def enqueue_in_transaction(self, connection: object, jobs: Sequence[NewJob]) -> list[Job]:
        """Store `jobs` as `enqueue_many` does, on `connection` (the caller's own driver
        connection) inside the transaction it has open: they exist only if it commits.

        A connection of another kind, to another database, closed, or with no transaction open
        raises `InvalidConnectionError`, and nothing is stored.
        """

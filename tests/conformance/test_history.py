"""Conformance: every ended attempt is kept in the job's history (bounded), written by the call
that ended it; claims and lists leave it unread."""

from __future__ import annotations

from queuekit import Backend, Job, JobStatus, Queue
from queuekit.backend import JobFilter
from queuekit.job import HISTORY_ERROR_CHARS, HISTORY_LIMIT, AttemptOutcome, AttemptRecord

from .helpers import WORKER, claim_one
from .test_fencing import rescue_until_done


async def claim_as(backend: Backend, worker_id: str, *, lease: float = 30.0) -> Job:
    (job,) = await backend.claim({"default": 1}, limit=1, lease=lease, worker_id=worker_id)
    return job


async def history(queue: Queue, job_id: str) -> tuple[AttemptRecord, ...]:
    job = await queue.get_job(job_id)
    assert job.history is not None
    return job.history


def ended(claimed: Job, outcome: AttemptOutcome, record: AttemptRecord) -> None:
    """`record` is the end of the attempt `claimed` started, with `outcome`."""
    assert claimed.started_at is not None and claimed.worker_id is not None
    assert (record.number, record.worker_id, record.started_at, record.outcome) == (
        claimed.attempts,
        claimed.worker_id,
        claimed.started_at,
        outcome,
    )
    assert record.finished_at >= record.started_at


async def test_two_failures_then_a_completion_are_three_records_in_order(
    queue: Queue, backend: Backend
) -> None:
    job = await queue.enqueue("t", max_attempts=3)
    assert await history(queue, job.id) == ()
    first = await claim_as(backend, "worker-a")
    assert await backend.fail(first.attempt, "ValueError: one", retry_in=0.0) == JobStatus.FAILED
    second = await claim_as(backend, "worker-b")
    assert await backend.fail(second.attempt, "KeyError: two", retry_in=0.0) == JobStatus.FAILED
    third = await claim_as(backend, "worker-c")
    assert await backend.complete(third.attempt, '"done"') == JobStatus.COMPLETED
    done = await queue.get_job(job.id)
    assert done.history is not None and len(done.history) == 3
    for claimed, outcome, record in zip(
        (first, second, third),
        (AttemptOutcome.FAILED, AttemptOutcome.FAILED, AttemptOutcome.COMPLETED),
        done.history,
        strict=True,
    ):
        ended(claimed, outcome, record)
    assert [record.error for record in done.history] == ["ValueError: one", "KeyError: two", None]
    # Each attempt ended before the next began, and the last when the job finished.
    assert done.history[0].finished_at <= done.history[1].started_at
    assert done.history[1].finished_at <= done.history[2].started_at
    assert done.history[2].finished_at == done.finished_at
    assert done.worker_id == "worker-c" and done.last_error == "KeyError: two"


async def test_a_dead_attempt_keeps_its_error(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t", max_attempts=1)
    claimed = await claim_one(backend)
    assert await backend.fail(claimed.attempt, "RuntimeError: no", retry_in=None) == JobStatus.DEAD
    dead = await queue.get_job(job.id)
    assert dead.history is not None
    (record,) = dead.history
    ended(claimed, AttemptOutcome.DEAD, record)
    assert record.error == "RuntimeError: no" and record.finished_at == dead.finished_at


async def test_rescued_attempts_end_with_lease_expired(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t", max_attempts=2)
    first = await claim_one(backend, lease=0.05)
    await rescue_until_done(backend)
    second = await claim_one(backend, lease=0.05)
    await rescue_until_done(backend)
    dead = await queue.get_job(job.id)
    assert dead.status == JobStatus.DEAD and dead.history is not None
    assert len(dead.history) == 2
    ended(first, AttemptOutcome.FAILED, dead.history[0])
    ended(second, AttemptOutcome.DEAD, dead.history[1])
    assert [record.error for record in dead.history] == ["lease expired"] * 2


async def test_a_cancel_ends_only_a_running_attempt(queue: Queue, backend: Backend) -> None:
    waiting = await queue.enqueue("t")
    assert (await queue.cancel(waiting.id)).history == ()
    job = await queue.enqueue("t")
    claimed = await claim_one(backend)
    cancelled = await queue.cancel(job.id)
    assert cancelled.status == JobStatus.CANCELLED and cancelled.history is not None
    (record,) = cancelled.history
    ended(claimed, AttemptOutcome.CANCELLED, record)
    assert record.error is None and record.finished_at == cancelled.finished_at
    assert await history(queue, job.id) == cancelled.history


async def test_a_bulk_cancel_ends_running_attempts(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t")
    claimed = await claim_one(backend)
    batch = await backend.cancel_batch(JobFilter(JobStatus.RUNNING), after=0, limit=10)
    assert batch.changed == 1
    (record,) = await history(queue, job.id)
    ended(claimed, AttemptOutcome.CANCELLED, record)


async def test_a_snooze_is_recorded_without_counting(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t", max_attempts=1)
    snoozed = await claim_one(backend)
    assert await backend.snooze(snoozed.attempt, 0.0) == JobStatus.PENDING
    again = await claim_one(backend)
    assert again.attempts == snoozed.attempts == 1
    assert await backend.complete(again.attempt) == JobStatus.COMPLETED
    first, second = await history(queue, job.id)
    ended(snoozed, AttemptOutcome.SNOOZED, first)
    ended(again, AttemptOutcome.COMPLETED, second)
    assert first.error is None


async def test_a_replay_keeps_the_history_and_the_next_attempt_appends(
    queue: Queue, backend: Backend
) -> None:
    job = await queue.enqueue("t", max_attempts=1)
    dead = await claim_one(backend)
    assert await backend.fail(dead.attempt, "OSError: down", retry_in=None) == JobStatus.DEAD
    before = await history(queue, job.id)
    replayed = await queue.replay(job.id)
    assert replayed.status == JobStatus.PENDING and replayed.history == before
    again = await claim_one(backend)
    assert again.attempts == 1
    assert await backend.complete(again.attempt) == JobStatus.COMPLETED
    first, second = await history(queue, job.id)
    assert first == before[0] and first.error == "OSError: down"
    ended(again, AttemptOutcome.COMPLETED, second)


async def test_the_latest_attempts_are_kept_up_to_the_bound(queue: Queue, backend: Backend) -> None:
    attempts = HISTORY_LIMIT + 3
    job = await queue.enqueue("t", max_attempts=attempts)
    for number in range(1, attempts + 1):
        claimed = await claim_one(backend)
        retry_in = 0.0 if number < attempts else None
        assert await backend.fail(claimed.attempt, f"error {number}", retry_in=retry_in)
    kept = await history(queue, job.id)
    assert [record.number for record in kept] == list(range(4, attempts + 1))
    assert [record.error for record in kept] == [f"error {n}" for n in range(4, attempts + 1)]
    assert kept[-1].outcome == AttemptOutcome.DEAD
    assert {record.outcome for record in kept[:-1]} == {AttemptOutcome.FAILED}


async def test_an_error_is_cut_to_the_bound_in_characters(queue: Queue, backend: Backend) -> None:
    # Characters of one to four bytes in UTF-8: the cut falls between characters.
    error = "aé€𝄞" * (HISTORY_ERROR_CHARS // 4 + 10)
    job = await queue.enqueue("t", max_attempts=1)
    claimed = await claim_one(backend)
    assert await backend.fail(claimed.attempt, error, retry_in=None) == JobStatus.DEAD
    dead = await queue.get_job(job.id)
    assert dead.last_error == error and dead.history is not None
    assert dead.history[0].error == error[:HISTORY_ERROR_CHARS]


async def test_a_fenced_out_call_writes_no_record(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t", max_attempts=3)
    stale = (await claim_one(backend, lease=0.05)).attempt
    await rescue_until_done(backend)
    new = await claim_one(backend)
    before = await history(queue, job.id)
    assert len(before) == 1
    assert await backend.complete(stale, '"stale"') is None
    assert await backend.fail(stale, "stale", retry_in=0.0) is None
    assert await backend.fail(stale, "stale", retry_in=None) is None
    assert await backend.snooze(stale, 0.0) is None
    assert await history(queue, job.id) == before
    assert await backend.complete(new.attempt) == JobStatus.COMPLETED
    assert [record.outcome for record in await history(queue, job.id)] == [
        AttemptOutcome.FAILED,
        AttemptOutcome.COMPLETED,
    ]


async def test_claims_and_lists_leave_the_history_unread(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t", max_attempts=2)
    assert job.history is None
    failed = await claim_one(backend)
    assert failed.history is None and failed.worker_id == WORKER
    assert await backend.fail(failed.attempt, "once", retry_in=0.0) == JobStatus.FAILED
    again = await claim_one(backend)
    assert again.history is None
    (listed,) = (await queue.list_jobs()).jobs
    assert listed.history is None
    # Read or not, it is the same job.
    assert listed == await queue.get_job(job.id)
    assert len(await history(queue, job.id)) == 1

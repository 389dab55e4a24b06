"""Conformance: a running job's progress and partial output, written by heartbeat and fenced."""

from __future__ import annotations

import math

import anyio
import pytest

from queuekit import Backend, InvalidOptionError, JobStatus, Queue, Tasks, Worker, current_job
from queuekit.errors import InvalidPayloadError, PayloadTooLargeError
from queuekit.progress import (
    MAX_NOTE_CHARS,
    MAX_OUTPUT_BYTES,
    ProgressReports,
    ProgressUpdate,
)
from queuekit.validation import encode_json

from ..waiting import eventually
from .helpers import claim_one

OUTPUT = {"rows": [1, 2.5, -0.0, 1e300, "ünï\u2028code"], "done": None, "nested": {"a": [True]}}
FRACTION = 0.1 + 0.2  # 0.30000000000000004: a float that only an exact store keeps


async def test_heartbeat_writes_progress_and_output_exactly(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t")
    running = await claim_one(backend)
    update = ProgressUpdate(FRACTION, "step 3 of 10 — ünïcode", encode_json(OUTPUT))
    assert (
        await backend.heartbeat([running.attempt], lease=30, progress={running.attempt: update})
        == set()
    )
    stored = await queue.get_job(job.id)
    assert stored.progress == FRACTION and stored.progress_note == "step 3 of 10 — ünïcode"
    assert stored.output == OUTPUT
    assert stored.status == JobStatus.RUNNING


async def test_only_what_changed_is_written(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t")
    running = await claim_one(backend)
    attempt = running.attempt
    first = ProgressUpdate(0.25, "a", "[1]")
    await backend.heartbeat([attempt], lease=30, progress={attempt: first})
    # No report: nothing changes; output alone: the progress stays.
    await backend.heartbeat([attempt], lease=30)
    await backend.heartbeat(
        [attempt], lease=30, progress={attempt: ProgressUpdate(output_json="[2]")}
    )
    stored = await queue.get_job(job.id)
    assert (stored.progress, stored.progress_note, stored.output) == (0.25, "a", [2])
    # A progress without a note clears the note; the output stays.
    await backend.heartbeat([attempt], lease=30, progress={attempt: ProgressUpdate(1.0)})
    stored = await queue.get_job(job.id)
    assert (stored.progress, stored.progress_note, stored.output) == (1.0, None, [2])
    await backend.complete(attempt)
    done = await queue.get_job(job.id)
    assert (done.status, done.progress, done.output) == (JobStatus.COMPLETED, 1.0, [2])


async def test_a_stale_attempt_writes_no_progress(queue: Queue, backend: Backend) -> None:
    job = await queue.enqueue("t")
    stale = (await claim_one(backend)).attempt
    await queue.cancel(job.id)
    await queue.replay(job.id)
    current = (await claim_one(backend)).attempt
    await backend.heartbeat([current], lease=30, progress={current: ProgressUpdate(0.5, "new")})
    lost = await backend.heartbeat(
        [stale], lease=30, progress={stale: ProgressUpdate(0.9, "stale", '"stale"')}
    )
    assert lost == {stale}
    stored = await queue.get_job(job.id)
    assert (stored.progress, stored.progress_note, stored.output) == (0.5, "new", None)


@pytest.mark.parametrize(
    "fraction", [-0.01, 1.01, math.nan, math.inf, -math.inf, True, "0.5", None]
)
def test_a_progress_outside_0_to_1_is_refused(fraction: object) -> None:
    reports = ProgressReports()
    with pytest.raises(InvalidOptionError):
        reports.set_progress(fraction, None)  # type: ignore[arg-type]
    assert reports.pending() is None


def test_a_note_or_output_over_its_bound_is_refused() -> None:
    reports = ProgressReports()
    reports.set_progress(0, "x" * MAX_NOTE_CHARS)
    with pytest.raises(InvalidOptionError):
        reports.set_progress(0.5, "x" * (MAX_NOTE_CHARS + 1))
    with pytest.raises(PayloadTooLargeError):
        reports.set_output("x" * MAX_OUTPUT_BYTES)
    with pytest.raises(InvalidPayloadError):
        reports.set_output({"nan": math.nan})
    assert reports.pending() == ProgressUpdate(0.0, "x" * MAX_NOTE_CHARS, None)


async def test_a_handler_reports_through_current_job(queue: Queue, backend: Backend) -> None:
    """End to end: `current_job()` reports, the worker's heartbeat (a short lease makes it
    frequent) writes them, `get_job` reads them back, and bad reports raise in the handler."""
    tasks = Tasks()
    reported = anyio.Event()
    finish = anyio.Event()
    refused: list[type[Exception]] = []

    @tasks.task()
    async def crunch() -> None:
        context = current_job()
        for bad in (1.5, -0.5, math.nan):
            try:
                context.set_progress(bad)
            except InvalidOptionError as exc:
                refused.append(type(exc))
        try:
            context.set_output("x" * (MAX_OUTPUT_BYTES + 1))
        except PayloadTooLargeError as exc:
            refused.append(type(exc))
        context.set_progress(FRACTION, "crunching")
        context.set_output(OUTPUT)
        reported.set()
        await finish.wait()

    job = await crunch.enqueue(queue)
    async with Worker(queue, tasks, lease=0.6, poll_interval=0.05):
        await reported.wait()

        async def written() -> bool:
            stored = await queue.get_job(job.id)
            return stored.progress is not None and stored.output is not None

        await eventually(written, "the heartbeat wrote the handler's progress")
        finish.set()
        await eventually(lambda: _completed(queue, job.id), "the job completed")
    stored = await queue.get_job(job.id)
    assert (stored.progress, stored.progress_note, stored.output) == (FRACTION, "crunching", OUTPUT)
    assert refused == [InvalidOptionError] * 3 + [PayloadTooLargeError]


async def _completed(queue: Queue, job_id: str) -> bool:
    return (await queue.get_job(job_id)).status == JobStatus.COMPLETED

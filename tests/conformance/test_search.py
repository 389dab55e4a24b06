"""Conformance: listing jobs by error text and creation time, with the other filters and pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

import queuekit
from queuekit import Backend, InvalidOptionError, JobStatus, Queue
from queuekit.backends.redis import listing
from queuekit.job import Job
from queuekit.search import MAX_ERROR_SEARCH

from .helpers import claim_one


@pytest.fixture(autouse=True)
def short_looks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis looks at five jobs a script, so a search takes several calls to page through."""
    monkeypatch.setattr(listing, "LIST_LOOK", 5)


async def _failed_with(handle: Queue, backend: Backend, error: str, **options: object) -> Job:
    job = await handle.enqueue("t", **options)  # type: ignore[arg-type]
    running = await claim_one(backend, queue=job.queue)
    assert await backend.fail(running.attempt, error, retry_in=None) == JobStatus.DEAD
    return await handle.get_job(job.id)


async def _all_pages(handle: Queue, limit: int = 3, **filters: object) -> list[str]:
    """Every page's job ids in order, checking that no page is longer than `limit`."""
    seen: list[str] = []
    cursor = None
    while True:
        page = await handle.list_jobs(limit=limit, cursor=cursor, **filters)  # type: ignore[arg-type]
        assert len(page.jobs) <= limit
        seen += [job.id for job in page.jobs]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


async def test_search_by_error_text_ignores_case(queue: Queue, backend: Backend) -> None:
    full = await _failed_with(queue, backend, "OSError: Disk FULL on /var")
    other = await _failed_with(queue, backend, "TimeoutError: no reply")
    await queue.enqueue("t")  # no error at all
    assert await _all_pages(queue, error="disk full") == [full.id]
    assert await _all_pages(queue, error="ERROR") == [other.id, full.id]
    assert await _all_pages(queue, error="Error: no") == [other.id]
    assert await _all_pages(queue, error="%") == []  # no wildcards: only the text itself
    assert await _all_pages(queue, error="nothing like it") == []


async def test_search_combines_with_queue_status_and_type(queue: Queue, backend: Backend) -> None:
    in_a = await _failed_with(queue, backend, "boom", queue="a")
    in_b = await _failed_with(queue, backend, "boom", queue="b")
    retrying = await queue.enqueue("u", queue="a")
    running = await claim_one(backend, queue="a")
    assert await backend.fail(running.attempt, "boom later", retry_in=3600)
    assert await _all_pages(queue, error="boom") == [retrying.id, in_b.id, in_a.id]
    assert await _all_pages(queue, error="boom", queue="a") == [retrying.id, in_a.id]
    assert await _all_pages(queue, error="boom", status="dead") == [in_b.id, in_a.id]
    assert await _all_pages(queue, error="boom", type="u") == [retrying.id]
    assert await _all_pages(queue, error="boom", queue="b", status="failed") == []


async def test_search_by_creation_time(queue: Queue) -> None:
    jobs = [await queue.enqueue("t", queue=f"q{n % 3}") for n in range(9)]
    times = sorted({job.created_at for job in jobs})
    after, before = times[len(times) // 3], times[-1]
    newest_first = list(reversed(jobs))

    def created(low: datetime | None, high: datetime | None) -> list[str]:
        return [
            job.id
            for job in newest_first
            if (low is None or job.created_at >= low) and (high is None or job.created_at < high)
        ]

    assert await _all_pages(queue, created_after=after) == created(after, None)
    assert await _all_pages(queue, created_before=before) == created(None, before)
    both = await _all_pages(queue, created_after=after, created_before=before)
    assert both == created(after, before)
    assert await _all_pages(queue, created_after=times[-1] + timedelta(seconds=1)) == []
    assert await _all_pages(queue, created_before=times[0]) == []
    in_q1 = await _all_pages(queue, queue="q1", created_after=after)
    assert in_q1 == [id for id in created(after, None) if id in {j.id for j in jobs[1::3]}]
    # Another time zone names the same instants.
    tokyo = after.astimezone(datetime.now(UTC).astimezone().tzinfo)
    assert await _all_pages(queue, created_after=tokyo) == created(after, None)


async def test_paging_through_a_search_yields_every_match_once(
    queue: Queue, backend: Backend
) -> None:
    wanted = []
    for n in range(8):
        await queue.enqueue("noise", queue=f"q{n % 3}", delay=3600)
        await _failed_with(queue, backend, "unrelated", queue=f"q{n % 2}")
        wanted.append(await _failed_with(queue, backend, f"needle {n}", queue=f"q{n % 2}"))
    expected = [job.id for job in reversed(wanted)]
    assert await _all_pages(queue, limit=3, error="NEEDLE") == expected
    assert await _all_pages(queue, limit=1, error="needle", status="dead") == expected
    since = wanted[2].created_at
    assert await _all_pages(queue, limit=2, error="needle", created_after=since) == [
        job.id for job in reversed(wanted) if job.created_at >= since
    ]


async def test_bad_search_terms_are_refused(queue: Queue) -> None:
    await queue.list_jobs(error="x" * MAX_ERROR_SEARCH)
    with pytest.raises(InvalidOptionError):
        await queue.list_jobs(error="x" * (MAX_ERROR_SEARCH + 1))
    with pytest.raises(InvalidOptionError):
        await queue.list_jobs(error="")
    with pytest.raises(InvalidOptionError):
        await queue.list_jobs(created_after=datetime(2026, 1, 1))  # naive
    with pytest.raises(InvalidOptionError):
        await queue.list_jobs(created_before="2026-01-01")  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionError):
        await queue.list_jobs(limit=0, error="x")


def test_the_search_module_is_public() -> None:
    assert queuekit.search.fold("ÄBC") == "Äbc"


async def test_instants_at_the_ends_of_time(queue: Queue) -> None:
    job = await queue.enqueue("t")
    earliest = datetime.min.replace(tzinfo=UTC)
    latest = datetime.max.replace(tzinfo=UTC)
    assert await _all_pages(queue, created_after=earliest, created_before=latest) == [job.id]
    east = timezone(timedelta(hours=5))
    with pytest.raises(InvalidOptionError):
        await queue.list_jobs(created_after=datetime.min.replace(tzinfo=east))

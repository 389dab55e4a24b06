"""The jobs page over HTTP: search by error text and time, actions on the selected jobs and on
every job a filter matches, run now on a job's page, relative times; every action CSRF-checked."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from queuekit import Job, JobStatus, Queue
from queuekit.api import create_app
from queuekit.backends.sqlite import SQLiteBackend
from queuekit.web.jobs_page import MAX_SELECTED
from queuekit.web.times import ago, duration

from ..conformance.helpers import claim_one
from .test_security import client, token_of


@pytest.fixture
async def sqlite_queue(tmp_path: Path) -> AsyncIterator[Queue]:
    async with Queue(SQLiteBackend(str(tmp_path / "jobs.db"))) as queue:
        yield queue


async def _dead(queue: Queue, error: str, name: str = "q") -> Job:
    job = await queue.enqueue("t", queue=name, max_attempts=1)
    running = await claim_one(queue.backend, queue=name)
    assert await queue.backend.fail(running.attempt, error, retry_in=None) == JobStatus.DEAD
    return job


def _rows(page: str) -> list[str]:
    return re.findall(r'<tr data-job="([^"]+)"', page)


async def test_actions_on_jobs_need_the_csrf_token(sqlite_queue: Queue) -> None:
    job = await sqlite_queue.enqueue("t", delay=3600)
    async with client(create_app(sqlite_queue)) as http:
        token = token_of(await http.get("/dashboard/jobs"))
        for path, data in (
            ("/dashboard/jobs/selected", {"action": "run-now", "job": job.id}),
            ("/dashboard/jobs/matching", {"action": "cancel"}),
            (f"/dashboard/jobs/{job.id}/run-now", {}),
        ):
            assert (await http.post(path, data=data)).status_code == 403
            assert (await http.post(path, data={**data, "csrf": "forged"})).status_code == 403
        assert await sqlite_queue.get_job(job.id) == job  # nothing changed
        done = await http.post(
            "/dashboard/jobs/selected", data={"action": "run-now", "job": job.id, "csrf": token}
        )
        assert done.status_code == 303
    assert (await sqlite_queue.get_job(job.id)).scheduled_at < job.scheduled_at


async def test_actions_on_the_selected_jobs(sqlite_queue: Queue) -> None:
    delayed = [await sqlite_queue.enqueue("t", delay=3600) for _ in range(3)]
    dead = await _dead(sqlite_queue, "boom")
    async with client(create_app(sqlite_queue)) as http:
        page = await http.get("/dashboard/jobs", params={"queue": "default"})
        token = token_of(page)
        assert f'value="{delayed[0].id}" form="selected-jobs"' in page.text

        async def post(action: str, *ids: str, **search: str) -> str:
            data = {"csrf": token, "action": action, "job": list(ids), **search}
            done = await http.post("/dashboard/jobs/selected", data=data)
            assert done.status_code == 303
            shown = await http.get(done.headers["location"])
            found = re.search(r'<p class="flash" role="status">(.*?)</p>', shown.text)
            assert found, shown.text
            return found.group(1)

        ran = await post("run-now", delayed[0].id, delayed[1].id, dead.id, queue="default")
        assert ran == "made due now 2 of 3 selected jobs; 1 left as they were"
        assert await post("replay", dead.id, "no-such-job") == (
            "replayed 1 of 2 selected jobs; 1 left as they were"
        )
        assert await post("cancel", delayed[2].id) == "cancelled 1 of 1 selected jobs"
        assert await post("delete", delayed[2].id, delayed[2].id) == "deleted 1 of 1 selected jobs"
        assert await post("cancel") == "select some jobs first"
        many = [f"id-{n}" for n in range(MAX_SELECTED + 1)]
        too_many = await http.post(
            "/dashboard/jobs/selected", data={"csrf": token, "action": "cancel", "job": many}
        )
        assert too_many.status_code == 422
        unknown = await http.post(
            "/dashboard/jobs/selected", data={"csrf": token, "action": "explode", "job": "x"}
        )
        assert unknown.status_code == 422
        # The redirect keeps the search, rebuilt from its fields only.
        done = await http.post(
            "/dashboard/jobs/selected",
            data={"csrf": token, "action": "cancel", "queue": "default", "next": "//evil"},
        )
        assert done.headers["location"] == "/dashboard/jobs?queue=default"
    assert (await sqlite_queue.get_job(dead.id)).status == JobStatus.PENDING
    assert await sqlite_queue.backend.get_job(delayed[2].id) is None


async def test_actions_on_every_job_matching_a_filter(sqlite_queue: Queue) -> None:
    for _ in range(3):
        await sqlite_queue.enqueue("t", queue="a", delay=3600)
    other = await sqlite_queue.enqueue("t", queue="b", delay=3600)
    async with client(create_app(sqlite_queue)) as http:
        page = await http.get("/dashboard/jobs", params={"queue": "a", "status": "pending"})
        assert 'data-confirm="Cancel every unfinished job matching queue a, status pending?"' in (
            page.text
        )
        token = token_of(page)
        done = await http.post(
            "/dashboard/jobs/matching",
            data={"csrf": token, "action": "cancel", "queue": "a", "status": "pending"},
        )
        assert done.headers["location"] == "/dashboard/jobs?queue=a&status=pending"
        shown = (await http.get(done.headers["location"])).text
        assert "cancelled 3 jobs matching queue a, status pending" in shown
        refused = await http.post(
            "/dashboard/jobs/matching",
            data={"csrf": token, "action": "replay", "status": "pending"},
        )
        assert (
            "nothing replayed: replay_all takes a status of dead, cancelled"
            in (await http.get(refused.headers["location"])).text
        )
        # A search by error text or time is no bulk filter: those buttons are not offered.
        searched = await http.get("/dashboard/jobs", params={"queue": "a", "error": "x"})
        assert "/dashboard/jobs/matching" not in searched.text
    assert (await sqlite_queue.get_job(other.id)).status == JobStatus.PENDING
    assert (await sqlite_queue.stats("a")).cancelled == 3


async def test_search_by_error_text_and_time(sqlite_queue: Queue) -> None:
    full = await _dead(sqlite_queue, "OSError: disk <b>FULL</b>")
    other = await _dead(sqlite_queue, "timeout")
    async with client(create_app(sqlite_queue)) as http:
        found = (await http.get("/dashboard/jobs", params={"error": "disk <b>full"})).text
        assert _rows(found) == [full.id]
        assert 'value="disk &lt;b&gt;full"' in found  # the search is shown back, escaped
        assert set(_rows((await http.get("/dashboard/jobs", params={"since": "1h"})).text)) == {
            full.id,
            other.id,
        }
        assert _rows((await http.get("/dashboard/jobs", params={"until": "1h"})).text) == []
        since = other.created_at.isoformat()
        assert other.id in _rows((await http.get("/dashboard/jobs", params={"since": since})).text)
        fragment = await http.get("/dashboard/fragments/jobs", params={"error": "TIMEOUT"})
        assert _rows(fragment.text) == [other.id]
        bad = await http.get("/dashboard/jobs", params={"since": "<script>"})
        assert bad.status_code == 422 and "<script>" not in bad.text


async def test_run_now_on_a_jobs_page_and_relative_times(sqlite_queue: Queue) -> None:
    delayed = await sqlite_queue.enqueue("t", delay=3600)
    due = await sqlite_queue.enqueue("t")
    async with client(create_app(sqlite_queue)) as http:
        page = await http.get(f"/dashboard/jobs/{delayed.id}")
        assert f'action="/dashboard/jobs/{delayed.id}/run-now"' in page.text
        assert "/run-now" not in (await http.get(f"/dashboard/jobs/{due.id}")).text
        listed = (await http.get("/dashboard/jobs")).text
        assert re.search(r"<time [^>]*title=\"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\"", listed)
        assert "in 60 min" in listed or "in 59 min" in listed  # the delayed job's due time
        assert " s ago</time>" in listed
        done = await http.post(
            f"/dashboard/jobs/{delayed.id}/run-now", data={"csrf": token_of(page)}
        )
        assert done.status_code == 303
        assert f"job {delayed.id} due now" in (await http.get(done.headers["location"])).text
        again = await http.post(
            f"/dashboard/jobs/{delayed.id}/run-now", data={"csrf": token_of(page)}
        )
        assert "left as it was (pending)" in (await http.get(again.headers["location"])).text
    running = await claim_one(sqlite_queue.backend)
    assert await sqlite_queue.backend.complete(running.attempt) == JobStatus.COMPLETED
    async with client(create_app(sqlite_queue)) as http:
        listed = (await http.get("/dashboard/jobs", params={"status": "completed"})).text
        assert re.search(r"<td class=\"num\" data-ran>[\d.]+ m?s</td>", listed)


def test_times_for_people() -> None:
    assert duration(0.345) == "345 ms" and duration(0.0075) == "7.5 ms"
    assert duration(1.25) == "1.25 s"
    assert duration(75) == "1 min 15 s" and duration(7500) == "2 h 5 min"
    assert ago(None) == "—"

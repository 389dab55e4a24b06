"""Enqueue and job middleware, on every backend: the README's example, order, changes, errors."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest

import queuekit
from queuekit import Job, JobContext, JobStatus, NewJob, Queue, Tasks, Worker, current_job
from queuekit.middleware import CallEnqueue, CallHandler, default_enqueue_middleware
from queuekit.validation import check_headers

from ..worker.options import FAST

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def readme_example(tmp_path: Path, tasks: Tasks) -> dict[str, Any]:
    """What the README's middleware snippet defines, run as it is shown."""
    (snippet,) = [
        block for block in re.findall(r"```python\n(.*?)```", README, re.S) if "call_next" in block
    ]
    names: dict[str, Any] = {"queuekit": queuekit, "Worker": Worker, "tasks": tasks}
    exec(snippet.replace("sqlite:///jobs.db", f"sqlite:///{tmp_path / 'jobs.db'}"), names)
    return names


async def test_the_readme_example(
    queue: Queue, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app")
    tasks = Tasks()

    @tasks.task()
    async def greet(name: str) -> str:
        return f"hi {name}"

    example = readme_example(tmp_path, tasks)
    assert example["queue"].middleware[-1] is example["audit"]
    assert example["worker"].middleware[-1] is example["timed"]

    audited = Queue(queue.backend, middleware=[example["audit"]])
    one = await greet.enqueue(audited, name="a")
    many = await audited.enqueue_many([queuekit.new_job("greet", {"name": n}) for n in "bc"])
    await Worker(audited, tasks, middleware=[example["timed"]], **FAST).run_until_empty()

    logged = [record.getMessage() for record in caplog.records if record.name == "app"]
    assert logged[:2] == [f"enqueued {one.id}", f"enqueued {many[0].id}, {many[1].id}"]
    assert len(logged) == 5
    assert all(re.fullmatch(r"greet ran \d+\.\d{3} s", line) for line in logged[2:])
    assert await audited.result(one.id) == "hi a"


async def test_the_first_is_outermost_and_each_may_change_what_it_passes(queue: Queue) -> None:
    calls: list[str] = []

    async def outer_enqueue(new_jobs: list[NewJob], call_next: CallEnqueue) -> list[Job]:
        calls.append("outer enqueue")
        return await call_next(new_jobs)

    async def tag_tenant(new_jobs: list[NewJob], call_next: CallEnqueue) -> list[Job]:
        calls.append("inner enqueue")
        tagged = [
            replace(job, headers=check_headers({**job.headers, "tenant": "acme"}))
            for job in new_jobs
        ]
        return await call_next(tagged)

    async def outer_job(context: JobContext, call_next: CallHandler) -> Any:
        calls.append(f"outer job {context.job.id}")
        try:
            return await call_next()
        finally:
            calls.append("outer job done")

    async def wrap_result(context: JobContext, call_next: CallHandler) -> Any:
        calls.append("inner job")
        assert current_job() is context
        return {"wrapped": await call_next()}

    tasks = Tasks()

    @tasks.task()
    def double(n: int) -> int:  # a plain function: it runs in a thread, inside the middleware
        calls.append("handler")
        return 2 * n

    tagging = Queue(queue.backend, middleware=[outer_enqueue, tag_tenant])
    job = await tagging.enqueue("double", {"n": 21}, headers={"k": "v"})
    assert calls == ["outer enqueue", "inner enqueue"]
    assert job.headers["tenant"] == "acme" and job.headers["k"] == "v"
    assert (await queue.get_job(job.id)).headers == job.headers

    calls.clear()
    worker = Worker(queue, tasks, middleware=[outer_job, wrap_result], **FAST)
    assert await worker.run_until_empty() == 1
    assert calls == [f"outer job {job.id}", "inner job", "handler", "outer job done"]
    assert await queue.result(job.id) == {"wrapped": 42}


async def test_what_a_job_middleware_raises_fails_the_attempt(queue: Queue) -> None:
    ran: list[str] = []

    async def refuse(context: JobContext, call_next: CallHandler) -> Any:
        raise PermissionError("tenant suspended")

    tasks = Tasks()

    @tasks.task(max_attempts=1)
    async def work() -> None:
        ran.append("handler")

    job = await work.enqueue(queue)
    await Worker(queue, tasks, middleware=[refuse], **FAST).run_until_empty()
    dead = await queue.get_job(job.id)
    assert dead.status == JobStatus.DEAD and ran == []
    assert dead.last_error is not None
    assert dead.last_error.startswith("PermissionError: tenant suspended")


async def test_a_job_middleware_wraps_the_timeout(queue: Queue) -> None:
    seen: list[BaseException] = []

    async def watch(context: JobContext, call_next: CallHandler) -> Any:
        try:
            return await call_next()
        except BaseException as exc:
            seen.append(exc)
            raise

    tasks = Tasks()

    @tasks.task(max_attempts=1, timeout=0.05)
    async def hang() -> None:
        await anyio.sleep_forever()

    job = await hang.enqueue(queue)
    await Worker(queue, tasks, middleware=[watch], **FAST).run_until_empty()
    assert [type(exc) for exc in seen] == [TimeoutError]
    dead = await queue.get_job(job.id)
    assert dead.status == JobStatus.DEAD
    assert dead.last_error is not None and "0.05 s timeout" in dead.last_error


async def test_without_middleware_a_queue_stores_directly(queue: Queue) -> None:
    assert queue.middleware == default_enqueue_middleware()
    queue.middleware.clear()
    job = await queue.enqueue("t", {"n": 1})
    (other,) = await queue.enqueue_many([queuekit.new_job("t", {"n": 2})])
    assert [await queue.get_job(job.id), await queue.get_job(other.id)] == [job, other]

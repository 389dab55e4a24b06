"""`queuekit tail`, run as a user would: it prints the events a test makes, as lines or JSON,
and Ctrl-C ends it cleanly."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from anyio.abc import ByteReceiveStream, Process
from anyio.streams.text import TextReceiveStream

from queuekit import Queue
from queuekit.cli.tail import READY

from ..setups import SETUPS, BackendSetup
from ..waiting import DEADLINE
from .test_cli import QUEUEKIT, ROOT, fails


@pytest.fixture(params=["postgres", "redis"])
async def shared_setup(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BackendSetup]:
    """A store whose events reach other processes."""
    async with SETUPS[request.param](tmp_path) as setup:
        yield setup


async def _lines(stream: ByteReceiveStream | None) -> AsyncIterator[str]:
    assert stream is not None
    buffered = ""
    async for chunk in TextReceiveStream(stream):
        buffered += chunk
        while "\n" in buffered:
            line, buffered = buffered.split("\n", 1)
            yield line


async def _tail(url: str, *args: str) -> Process:
    env = {**os.environ, "QUEUEKIT_URL": url, "COLUMNS": "200"}
    return await anyio.open_process([QUEUEKIT, "tail", *args], env=env, cwd=ROOT)


async def _stop(process: Process) -> int:
    process.send_signal(signal.SIGINT)
    with anyio.fail_after(DEADLINE):
        return await process.wait()


async def test_tail_prints_events_as_json_and_stops_on_ctrl_c(
    shared_setup: BackendSetup,
) -> None:
    assert shared_setup.url is not None
    process = await _tail(shared_setup.url, "--json", "--queue", "mail", "--kinds", "enqueued")
    async with process, Queue(shared_setup.make()) as queue:
        errors, output = _lines(process.stderr), _lines(process.stdout)
        with anyio.fail_after(DEADLINE):
            assert await anext(errors) == READY
            await queue.enqueue("other", queue="sms")
            job = await queue.enqueue("send", {"to": "a"}, queue="mail")
            line = await anext(output)
        assert json.loads(line) == {
            "kind": "enqueued",
            "queue": "mail",
            "job_id": job.id,
            "type": "send",
            "at": job.created_at.isoformat(),
            "attempt": 0,
        }
        assert await _stop(process) == 0
        with anyio.fail_after(DEADLINE):
            assert [line async for line in errors] == []  # no traceback, no "Aborted"


async def test_tail_prints_one_line_per_event(shared_setup: BackendSetup) -> None:
    assert shared_setup.url is not None
    process = await _tail(shared_setup.url)
    async with process, Queue(shared_setup.make()) as queue:
        errors, output = _lines(process.stderr), _lines(process.stdout)
        with anyio.fail_after(DEADLINE):
            assert await anext(errors) == READY
            job = await queue.enqueue("send", queue="mail")
            await queue.cancel(job.id)
            await queue.replay(job.id)
            await queue.delete_job(job.id)
            enqueued, cancelled = await anext(output), await anext(output)
            replayed, deleted = await anext(output), await anext(output)
        assert await _stop(process) == 0
    when = job.created_at.strftime("%Y-%m-%d %H:%M:%S")
    assert enqueued == f"{when}  enqueued  mail  send  {job.id}  attempt 0"
    assert cancelled.split("  ")[1:] == ["cancelled", "mail", "send", job.id, "attempt 0"]
    assert replayed.split("  ")[1:] == ["enqueued", "mail", "send", job.id, "attempt 0", "replay"]
    assert deleted.split("  ") == ["-", "deleted", "*", "*", job.id]


def test_tail_refuses_an_unknown_kind() -> None:
    error = fails("tail", "--kinds", "enqueued,finished", url="memory://")
    assert "unknown event kind" in error

"""The installed `queuekit` command, run in a subprocess as a user would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio

import queuekit
from queuekit import JobStatus

from ..setups import BackendSetup

QUEUEKIT = str(Path(sys.executable).parent / "queuekit")
ROOT = Path(__file__).resolve().parents[2]
FAST_WORKER = ["--queues", "default=5", "--poll-interval", "0.1", "--processes", "1"]


def run(
    *args: str,
    url: str | None = None,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `queuekit ARGS` with its output piped, as in a script."""
    env = {**os.environ, "COLUMNS": "200", **(env or {})}
    env.pop("QUEUEKIT_URL", None)
    if url is not None:
        env["QUEUEKIT_URL"] = url
    return subprocess.run(
        [QUEUEKIT, *args],
        capture_output=True,
        text=True,
        env=env,
        input=input,
        timeout=60,
        cwd=ROOT,
    )


def ok(*args: str, url: str | None = None, env: dict[str, str] | None = None) -> str:
    done = run(*args, url=url, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def ok_json(*args: str, url: str) -> Any:
    return json.loads(ok(*args, "--json", url=url))


def fails(
    *args: str, url: str | None = None, input: str | None = None, env: dict[str, str] | None = None
) -> str:
    """Run a command that must fail: one line on stderr, no traceback, exit status 1."""
    done = run(*args, url=url, input=input, env=env)
    assert done.returncode == 1, (done.stdout, done.stderr)
    error = done.stderr.strip()
    assert error.startswith("queuekit: error: ") and "\n" not in error, done.stderr
    return error


def test_operate_a_queue_from_the_terminal(durable_setup: BackendSetup) -> None:
    url = durable_setup.url
    assert url is not None
    ok("migrate", url=url)
    job = ok_json("enqueue", "double", '{"n": 21}', "--queue", "math", "--priority", "20", url=url)
    assert job["status"] == "pending" and job["payload"] == {"n": 21} and job["priority"] == 20
    other = ok_json("enqueue", "double", '{"n": 1}', "--queue", "math", url=url)

    page = ok_json("jobs", "list", "--queue", "math", "--limit", "1", url=url)
    assert [j["id"] for j in page["jobs"]] == [other["id"]] and page["next_cursor"]
    rest = ok_json("jobs", "list", "--limit", "1", "--cursor", page["next_cursor"], url=url)
    assert [j["id"] for j in rest["jobs"]] == [job["id"]]
    assert job["id"] in ok("jobs", "list", "--status", "pending", url=url)  # the table

    assert "paused" in ok("queues", "pause", "math", url=url)
    (stats,) = ok_json("stats", "--queue", "math", url=url)
    assert stats["paused"] is True and stats["pending"] == 2
    assert "paused" in ok("queues", "list", url=url)
    ok("queues", "resume", "math", url=url)
    assert ok_json("queues", "list", url=url)[0]["paused"] is False

    assert "cancelled" in ok("jobs", "cancel", job["id"], url=url)
    done = run("jobs", "replay", job["id"], "no-such-id", url=url)
    assert done.returncode == 1 and f"{job['id']} replayed" in done.stdout
    assert "no job with id 'no-such-id'" in done.stderr
    shown = ok_json("jobs", "show", job["id"], url=url)
    assert shown["id"] == job["id"] and shown["status"] == "pending" and shown["attempts"] == 0
    assert "deleted" in ok("jobs", "delete", job["id"], other["id"], url=url)
    assert "no job with id" in fails("jobs", "show", job["id"], url=url)


def test_mistakes_are_one_line_and_exit_1(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    assert "not valid JSON" in fails("enqueue", "t", "{nope", url=url)
    assert "unknown URL scheme" in fails("stats", url="mysql://x")
    assert "no backend URL" in fails("stats")
    assert "Redis is unavailable" in fails("stats", url="redis://127.0.0.1:1/0")
    assert "invalid queue name" in fails("queues", "pause", "bad name", url=url)
    assert "Aborted" in fails(
        "jobs", "purge", "--queue", "q", "--status", "dead", url=url, input="n\n"
    )
    assert "without an API key" in fails("serve", "--host", "0.0.0.0", url=url)
    assert "cannot load tasks" in fails("worker", "nowhere.at_all:tasks", url=url)
    not_schedules = fails("worker", "tests.cli.app:tasks", "--schedules", "tests.cli.app:tasks")
    assert "must be a list of queuekit.Schedule" in not_schedules
    # Wrong commands and flags too: click's usage errors, as one line and status 1, not 2.
    assert "No such command 'nonsense'" in fails("nonsense")
    assert "'nope' is not one of" in fails("jobs", "list", "--status", "nope", url=url)
    assert "Missing argument 'TYPE'" in fails("enqueue", url=url)
    assert "give job IDS" in fails("jobs", "replay", url=url)
    assert "out of range 0..1000" in fails("enqueue", "t", "--priority", "5000", url=url)
    assert "not both" in fails(
        "enqueue", "t", "--delay", "1", "--run-at", "2030-01-01T00:00Z", url=url
    )
    assert "KEY=VALUE" in fails("enqueue", "t", "--header", "tenant", url=url)


def test_a_tasks_module_that_fails_to_import_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    (tmp_path / "raising.py").write_text("import os\nraise RuntimeError('no SMTP_HOST')\n")
    (tmp_path / "unparsable.py").write_text("def broken(:\n")
    env = {"PYTHONPATH": str(tmp_path)}
    raised = fails("worker", "raising:tasks", url=url, env=env)
    assert "cannot load tasks 'raising:tasks': RuntimeError: no SMTP_HOST" in raised
    assert f"{tmp_path / 'raising.py'}:2" in raised
    assert "invalid syntax" in fails("worker", "unparsable:tasks", url=url, env=env)


def test_enqueue_takes_every_option(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    job = ok_json(
        "enqueue",
        "t",
        "--id",
        "order-42",
        "--run-at",
        "2030-01-01T09:00:00+01:00",
        "--unique-key",
        "u",
        "--max-attempts",
        "5",
        "--header",
        "tenant=acme",
        "--header",
        "trace=a=b",
        url=url,
    )
    assert job["id"] == "order-42" and job["scheduled_at"] == "2030-01-01T08:00:00+00:00"
    assert job["unique_key"] == "u" and job["max_attempts"] == 5
    assert job["headers"] == {"tenant": "acme", "trace": "a=b"}
    later = ok_json("enqueue", "t", "--delay", "60", url=url)
    assert later["scheduled_at"] > later["created_at"] and later["queue"] == "default"


async def test_show_prints_headers_when_a_job_has_some(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    async with queuekit.connect(url) as queue:
        tagged = await queue.enqueue("t", {"n": 1}, headers={"tenant": "acme"})
        plain = await queue.enqueue("t", {"n": 2})
    shown = await anyio.to_thread.run_sync(lambda: ok("jobs", "show", tagged.id, url=url))
    assert 'headers\n{\n  "tenant": "acme"\n}\npayload' in shown
    assert "headers" not in await anyio.to_thread.run_sync(
        lambda: ok("jobs", "show", plain.id, url=url)
    )
    as_json = await anyio.to_thread.run_sync(lambda: ok_json("jobs", "show", tagged.id, url=url))
    assert as_json["headers"] == {"tenant": "acme"}


async def test_worker_replay_all_dead_purge_and_watch(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    async with queuekit.connect(url) as queue:
        good = await queue.enqueue("double", {"n": 21})
        bad = [await queue.enqueue("explode", max_attempts=1) for _ in range(2)]
        worker = subprocess.Popen(
            [QUEUEKIT, "worker", "tests.cli.app:tasks", "--url", url, *FAST_WORKER],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert await queue.result(good.id, timeout=20) == 42
            with anyio.fail_after(20):  # both, in whatever order the worker ran them
                for job in bad:
                    while (await queue.get_job(job.id)).status != JobStatus.DEAD:
                        await anyio.sleep(0.05)
            shown = await anyio.to_thread.run_sync(lambda: ok("jobs", "show", bad[0].id, url=url))
            assert "RuntimeError: kaboom" in shown and "Traceback" in shown
            before = {job.id: (await queue.get_job(job.id)).finished_at for job in bad}
            out = await anyio.to_thread.run_sync(
                lambda: ok(
                    "jobs",
                    "replay",
                    "--queue",
                    "default",
                    "--type",
                    "explode",
                    "--all-dead",
                    url=url,
                )
            )
            assert out == "replayed 2 dead jobs of type explode of queue default\n"
            with anyio.fail_after(20):  # the worker runs them again, under the same ids
                for job in bad:
                    while True:
                        again = await queue.get_job(job.id)
                        if again.status == JobStatus.DEAD and again.finished_at != before[job.id]:
                            break
                        await anyio.sleep(0.05)
        finally:
            worker.send_signal(signal.SIGTERM)
            _, log = await anyio.to_thread.run_sync(lambda: worker.communicate(timeout=30))
        assert worker.returncode == 0, log
        assert "shutting down" in log

    frames = await anyio.to_thread.run_sync(
        lambda: ok("stats", "--watch", "--interval", "0.1", "--count", "2", "--json", url=url)
    )
    first, second = (json.loads(line) for line in frames.splitlines())
    assert first[0]["throughput"] is None and second[0]["throughput"] == 0
    assert first[0]["dead"] == 2 and first[0]["completed"] == 1
    table = await anyio.to_thread.run_sync(
        lambda: ok("stats", "--watch", "--interval", "0.1", "--count", "2", url=url)
    )
    assert "done/s" in table and "default" in table
    purged = await anyio.to_thread.run_sync(
        lambda: ok("jobs", "purge", "--queue", "default", "--status", "dead", "--yes", url=url)
    )
    assert "deleted 2 dead jobs" in purged


async def test_worker_fires_its_schedules(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    worker = subprocess.Popen(
        [
            QUEUEKIT,
            "worker",
            "tests.cli.app:tasks",
            "--url",
            url,
            *FAST_WORKER,
            "--schedules",
            "tests.cli.app:SCHEDULES",
        ],
        cwd=ROOT,
    )
    try:
        async with queuekit.connect(url) as queue:
            with anyio.fail_after(30):
                while (await queue.stats()).completed < 3:
                    await anyio.sleep(0.1)
            ticks = (await queue.list_jobs(status=JobStatus.COMPLETED)).jobs
            assert {job.type for job in ticks} == {"tick"}
            assert all(job.result == "tock" and job.id.startswith("schedule:") for job in ticks)
    finally:
        worker.send_signal(signal.SIGTERM)
        await anyio.to_thread.run_sync(lambda: worker.wait(30))
    assert worker.returncode == 0

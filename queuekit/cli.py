"""The `queuekit` command: run workers, enqueue, inspect and repair jobs, pause queues, serve.

Every command takes `--url` (or `QUEUEKIT_URL`); inspection commands print tables for people
and JSON with `--json` for scripts. A user's mistake is one line on stderr and exit status 1.
"""

from __future__ import annotations

import importlib
import ipaddress
import json
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import anyio
import click

from .errors import JobNotFoundError, QueueKitError
from .job import Job, JobStatus
from .queue import Queue, connect
from .serialize import job_dict, stats_dict
from .stats import QueueStats
from .validation import MAX_DELAY_SECONDS

T = TypeVar("T")

STATUSES = [status.value for status in JobStatus]


class Failure(click.ClickException):
    """A user-facing error: printed as one line, exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"queuekit: error: {self.message}", err=True)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the errors a user can cause into one clear line instead of a traceback."""
    try:
        yield
    except QueueKitError as exc:
        raise Failure(str(exc)) from None
    except ModuleNotFoundError as exc:
        hint = {
            "asyncpg": "postgres",
            "redis": "redis",
            "starlette": "api",
            "uvicorn": "api",
            "prometheus_client": "metrics",
        }
        extra = hint.get((exc.name or "").split(".")[0])
        advice = f": pip install 'queuekit[{extra}]'" if extra else ""
        raise Failure(f"{exc}{advice}") from None
    except TimeoutError as exc:
        raise Failure(f"timed out: {exc}") from None
    except OSError as exc:
        raise Failure(f"cannot reach the backend: {exc}") from None


def _run(main: Callable[[], Awaitable[T]]) -> T:
    with _user_errors():
        return anyio.run(main)


def _url(url: str | None) -> str:
    if not url:
        raise Failure("no backend URL: pass --url or set QUEUEKIT_URL (e.g. sqlite:///jobs.db)")
    return url


def _queue(url: str | None) -> Queue:
    with _user_errors():
        return connect(_url(url))


url_option = click.option(
    "--url",
    envvar="QUEUEKIT_URL",
    help="Backend URL (sqlite:///jobs.db, postgresql://…, redis://…); env QUEUEKIT_URL.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _console() -> Any:
    from rich.console import Console

    return Console()


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def _time(job_time: Any) -> str:
    return "-" if job_time is None else job_time.strftime("%Y-%m-%d %H:%M:%S")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="queuekit")
def main() -> None:
    """queuekit: run workers, enqueue, inspect and repair jobs, pause queues, serve the API."""


# Workers


def _load(reference: str, what: str) -> Any:
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise Failure(f"{what} must look like module.path:name, got {reference!r}")
    if "" not in sys.path:
        sys.path.insert(0, "")  # like `python -m`: modules in the current folder are found
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise Failure(f"cannot load {what} {reference!r}: {exc}") from None
    return target


def _limits(queues: str, concurrency: int) -> dict[str, int]:
    """`a,b` or `a=5,b`: each queue with its own limit (default: the concurrency)."""
    limits: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in queues.split(","))):
        name, _, limit = item.partition("=")
        try:
            limits[name] = int(limit) if limit else concurrency
        except ValueError:
            raise Failure(f"bad queue limit in {item!r}: use name=number") from None
    if not limits:
        raise Failure("--queues needs at least one queue name")
    return limits


@main.command()
@click.argument("tasks_ref", metavar="MODULE:TASKS")
@url_option
@click.option("--queues", default="default", show_default=True, help="a,b or a=5,b=20")
@click.option("--concurrency", type=int, default=10, show_default=True)
@click.option("--schedules", "schedules_ref", metavar="MODULE:LIST", help="Schedules to fire.")
@click.option("--lease", type=float, default=30.0, show_default=True, help="Seconds.")
@click.option("--poll-interval", type=float, default=1.0, show_default=True, help="Seconds.")
@click.option("--shutdown-timeout", type=float, default=30.0, show_default=True, help="Seconds.")
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="Serve Prometheus metrics on 127.0.0.1:PORT (needs queuekit[metrics]).",
)
def worker(
    tasks_ref: str,
    url: str | None,
    queues: str,
    concurrency: int,
    schedules_ref: str | None,
    lease: float,
    poll_interval: float,
    shutdown_timeout: float,
    metrics_port: int | None,
) -> None:
    """Run a worker for the tasks in MODULE:TASKS until SIGTERM or SIGINT (which drain it)."""
    import logging

    from .scheduler import Schedule
    from .tasks import Tasks
    from .worker import Worker

    tasks = _load(tasks_ref, "tasks")
    if not isinstance(tasks, Tasks):
        raise Failure(f"{tasks_ref} is a {type(tasks).__name__}, not a queuekit.Tasks")
    schedules: list[Schedule] = []
    if schedules_ref is not None:
        loaded = _load(schedules_ref, "schedules")
        schedules = list(loaded) if isinstance(loaded, list | tuple) else [loaded]
        if not all(isinstance(item, Schedule) for item in schedules):
            raise Failure(f"{schedules_ref} must be a list of queuekit.Schedule")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    queue = _queue(url)
    hooks: dict[str, Any] = {}
    metrics = None
    if metrics_port is not None:
        with _user_errors():
            from .metrics import Metrics
        metrics = Metrics()
        metrics.instrument(queue)
        hooks = {"before_job": [metrics.before_job], "after_job": [metrics.after_job]}
        metrics.serve(metrics_port)

    async def run() -> None:
        pool = Worker(
            queue,
            tasks,
            queues=_limits(queues, concurrency),
            concurrency=concurrency,
            lease=lease,
            poll_interval=poll_interval,
            shutdown_timeout=shutdown_timeout,
            schedules=schedules,
            **hooks,
        )
        async with queue:
            if metrics is None:
                await pool.run()
                return
            async with anyio.create_task_group() as group:
                group.start_soon(metrics.poll, queue, list(pool.limits))
                await pool.run()
                group.cancel_scope.cancel()

    _run(run)


# Producing


@main.command()
@click.argument("type")
@click.argument("payload", default="null")
@url_option
@json_option
@click.option("--queue", default="default", show_default=True)
@click.option("--priority", type=int, default=10, show_default=True)
@click.option(
    "--delay", type=click.FloatRange(0, MAX_DELAY_SECONDS), help="Seconds before it may run."
)
@click.option("--unique-key")
@click.option("--max-attempts", type=int, default=3, show_default=True)
def enqueue(
    type: str,
    payload: str,
    url: str | None,
    as_json: bool,
    queue: str,
    priority: int,
    delay: float | None,
    unique_key: str | None,
    max_attempts: int,
) -> None:
    """Enqueue a job of TYPE with a JSON PAYLOAD, e.g. '{"to": "a@example.com"}'."""
    try:
        value = json.loads(payload)
    except ValueError as exc:
        raise Failure(f"PAYLOAD is not valid JSON: {exc}") from None
    handle = _queue(url)

    async def run() -> Job:
        async with handle:
            return await handle.enqueue(
                type,
                value,
                queue=queue,
                priority=priority,
                delay=delay,
                unique_key=unique_key,
                max_attempts=max_attempts,
            )

    job = _run(run)
    if as_json:
        _print_json(job_dict(job))
    else:
        click.echo(f"{job.id} {job.status} in queue {job.queue}")


# Jobs


@main.group()
def jobs() -> None:
    """List, show, replay, cancel, delete and purge jobs."""


@jobs.command("list")
@url_option
@json_option
@click.option("--queue")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--cursor", help="The next_cursor of the previous page.")
def list_jobs(
    url: str | None,
    as_json: bool,
    queue: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> None:
    """Jobs newest first, a page at a time."""
    handle = _queue(url)

    async def run() -> Any:
        async with handle:
            return await handle.list_jobs(queue=queue, status=status, limit=limit, cursor=cursor)

    page = _run(run)
    if as_json:
        _print_json({"jobs": [job_dict(j) for j in page.jobs], "next_cursor": page.next_cursor})
        return
    from rich.table import Table

    table = Table(box=None)
    for column in ("id", "queue", "type", "status", "attempts", "priority", "created", "due"):
        table.add_column(column, no_wrap=column == "id")
    for job in page.jobs:
        table.add_row(
            job.id,
            job.queue,
            job.type,
            str(job.status),
            f"{job.attempts}/{job.max_attempts}",
            str(job.priority),
            _time(job.created_at),
            _time(job.scheduled_at),
        )
    console = _console()
    console.print(table if page.jobs else "no jobs")
    if page.next_cursor is not None:
        console.print(f"more: --cursor {page.next_cursor}", highlight=False)


@jobs.command()
@click.argument("job_id")
@url_option
@json_option
def show(job_id: str, url: str | None, as_json: bool) -> None:
    """One job: headers, payload, attempts, last error with its traceback, result."""
    handle = _queue(url)

    async def run() -> Job:
        async with handle:
            return await handle.get_job(job_id)

    job = _run(run)
    if as_json:
        _print_json(job_dict(job))
        return
    fields = job_dict(job)
    width = max(len(name) for name in fields)
    for name in ("id", "queue", "type", "status", "priority", "unique_key", "worker_id"):
        click.echo(f"{name:<{width}}  {fields[name] if fields[name] is not None else '-'}")
    click.echo(f"{'attempts':<{width}}  {job.attempts} of {job.max_attempts}")
    for name in ("created_at", "scheduled_at", "started_at", "finished_at", "lease_expires_at"):
        click.echo(f"{name:<{width}}  {fields[name] or '-'}")
    if job.headers:
        click.echo(f"headers\n{json.dumps(job.headers, indent=2, ensure_ascii=False)}")
    click.echo(f"payload\n{json.dumps(job.payload, indent=2, ensure_ascii=False)}")
    if job.result is not None:
        click.echo(f"result\n{json.dumps(job.result, indent=2, ensure_ascii=False)}")
    if job.last_error:
        click.echo(f"last error\n{job.last_error}")


def _each(
    url: str | None, ids: tuple[str, ...], action: Callable[[Queue, str], Awaitable[str]]
) -> None:
    """Apply `action` to each id, print its line; unknown ids are errors, reported at the end."""
    handle = _queue(url)
    missing: list[str] = []

    async def run() -> None:
        async with handle:
            for job_id in ids:
                try:
                    click.echo(await action(handle, job_id))
                except JobNotFoundError:
                    missing.append(job_id)
                    click.echo(f"queuekit: error: no job with id {job_id!r}", err=True)

    _run(run)
    if missing:
        sys.exit(1)


async def _replay(queue: Queue, job_id: str) -> str:
    job = await queue.replay(job_id)
    if job.status == JobStatus.PENDING and job.attempts == 0:
        return f"{job.id} replayed"
    return f"{job.id} left as {job.status} (only dead or cancelled jobs are replayed)"


@jobs.command()
@click.argument("ids", nargs=-1)
@url_option
@click.option("--queue", help="With --all-dead: the queue whose dead jobs to replay.")
@click.option("--all-dead", is_flag=True, help="Replay every dead job of --queue.")
def replay(ids: tuple[str, ...], url: str | None, queue: str | None, all_dead: bool) -> None:
    """Run dead or cancelled jobs again, same id, attempts reset."""
    if all_dead == bool(ids) or (all_dead and queue is None):
        raise click.UsageError("give job IDS, or --all-dead with --queue")
    if ids:
        _each(url, ids, _replay)
        return
    assert queue is not None
    handle = _queue(url)

    async def run() -> int:
        replayed = 0
        async with handle:
            cursor = None
            while True:
                page = await handle.list_jobs(
                    queue=queue, status=JobStatus.DEAD, limit=500, cursor=cursor
                )
                for job in page.jobs:
                    replayed += (await handle.replay(job.id)).status == JobStatus.PENDING
                if page.next_cursor is None:
                    return replayed
                cursor = page.next_cursor

    click.echo(f"replayed {_run(run)} dead jobs of queue {queue}")


async def _cancel(queue: Queue, job_id: str) -> str:
    job = await queue.cancel(job_id)
    return f"{job.id} {job.status}"


async def _delete(queue: Queue, job_id: str) -> str:
    if await queue.delete_job(job_id):
        return f"{job_id} deleted"
    await queue.get_job(job_id)  # raises JobNotFoundError for an unknown id
    return f"{job_id} is running: not deleted (cancel it first)"


@jobs.command()
@click.argument("ids", nargs=-1, required=True)
@url_option
def cancel(ids: tuple[str, ...], url: str | None) -> None:
    """Cancel jobs that have not finished; running ones stop within a heartbeat."""
    _each(url, ids, _cancel)


@jobs.command()
@click.argument("ids", nargs=-1, required=True)
@url_option
def delete(ids: tuple[str, ...], url: str | None) -> None:
    """Delete jobs that are not running."""
    _each(url, ids, _delete)


@jobs.command()
@url_option
@click.option("--queue", required=True)
@click.option("--status", required=True, type=click.Choice([s for s in STATUSES if s != "running"]))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(url: str | None, queue: str, status: str, yes: bool) -> None:
    """Delete every job of a queue in one status."""
    if not yes:
        click.confirm(f"Delete every {status} job of queue {queue}?", abort=True)
    handle = _queue(url)

    async def run() -> int:
        async with handle:
            return await handle.purge(queue, status)

    click.echo(f"deleted {_run(run)} {status} jobs of queue {queue}")


# Queues


@main.group()
def queues() -> None:
    """List, pause and resume queues."""


@queues.command("list")
@url_option
@json_option
def list_queues(url: str | None, as_json: bool) -> None:
    """Every queue with its counts; paused ones are marked."""
    _show_stats(url, None, as_json, watch=False, interval=2.0, count=None)


def _pauser(resume: bool) -> Callable[[str, str | None], None]:
    def command(name: str, url: str | None) -> None:
        handle = _queue(url)

        async def run() -> None:
            async with handle:
                await (handle.resume(name) if resume else handle.pause(name))

        _run(run)
        click.echo(f"queue {name} {'resumed' if resume else 'paused'}")

    return command


for _name, _resume, _help in (
    ("pause", False, "Stop workers claiming from queue NAME (enqueueing still works)."),
    ("resume", True, "Let workers claim from queue NAME again."),
):
    queues.command(_name, help=_help)(click.argument("name")(url_option(_pauser(_resume))))


# Stats


@main.command()
@url_option
@json_option
@click.option("--queue", help="One queue (default: every queue).")
@click.option("--watch", is_flag=True, help="Refresh in place, with throughput.")
@click.option("--interval", type=click.FloatRange(0.1), default=2.0, show_default=True)
@click.option("--count", type=click.IntRange(1), help="With --watch: stop after N refreshes.")
def stats(
    url: str | None,
    as_json: bool,
    queue: str | None,
    watch: bool,
    interval: float,
    count: int | None,
) -> None:
    """Counts per state, oldest ready job's age, health and pause state, per queue."""
    _show_stats(url, queue, as_json, watch=watch, interval=interval, count=count)


def _show_stats(
    url: str | None,
    only: str | None,
    as_json: bool,
    *,
    watch: bool,
    interval: float,
    count: int | None,
) -> None:
    handle = _queue(url)

    async def sample() -> tuple[float, list[QueueStats]]:
        names = [only] if only is not None else await handle.list_queues()
        return time.monotonic(), [await handle.stats(name) for name in names]

    async def run() -> None:
        async with handle:
            if not watch:
                current = await sample()
                if as_json:
                    _print_json([stats_dict(stats) for stats in current[1]])
                else:
                    _console().print(_table(current, None))
                return
            from rich.live import Live

            previous: tuple[float, list[QueueStats]] | None = None
            frames = 0
            # With --json, one line of JSON per sample (for `jq`); else a table redrawn in place.
            with (
                Live(auto_refresh=False, console=_console()) if not as_json else _nothing() as live
            ):
                while True:
                    current = await sample()
                    if live is None:
                        rates = _rates(current, previous)
                        rows = [
                            {**stats_dict(stats), "throughput": rates.get(stats.queue)}
                            for stats in current[1]
                        ]
                        click.echo(json.dumps(rows))
                    else:
                        live.update(_table(current, previous), refresh=True)
                    frames += 1
                    if count is not None and frames >= count:
                        return
                    previous = current
                    await anyio.sleep(interval)

    _run(run)


def _rates(
    current: tuple[float, list[QueueStats]], previous: tuple[float, list[QueueStats]] | None
) -> dict[str, float | None]:
    """Completed jobs per second between two samples (None on the first)."""
    if previous is None:
        return {}
    elapsed = current[0] - previous[0]
    before = {stats.queue: stats.completed for stats in previous[1]}
    return {
        stats.queue: max(0, stats.completed - before[stats.queue]) / elapsed
        for stats in current[1]
        if stats.queue in before and elapsed > 0
    }


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def _table(
    current: tuple[float, list[QueueStats]], previous: tuple[float, list[QueueStats]] | None
) -> Any:
    from rich.table import Table

    rates = _rates(current, previous)
    table = Table(box=None)
    columns = ["queue", "state", "ready", "scheduled", "running", "failed", "dead"]
    columns += ["completed", "cancelled", "oldest ready", "health"]
    if previous is not None:
        columns.append("done/s")
    for column in columns:
        table.add_column(column, justify="left" if column in ("queue", "state") else "right")
    for stats in current[1]:
        health = f"[{'green' if stats.health >= 90 else 'red'}]{stats.health}[/]"
        row = [
            stats.queue,
            "[yellow]paused[/]" if stats.paused else "active",
            *map(str, (stats.ready, stats.scheduled, stats.running, stats.failed, stats.dead)),
            str(stats.completed),
            str(stats.cancelled),
            _age(stats.oldest_ready_age),
            health,
        ]
        if previous is not None:
            rate = rates.get(stats.queue)
            row.append("-" if rate is None else f"{rate:.1f}")
        table.add_row(*row)
    return table if current[1] else "no queues"


# Schema and serving


@main.command()
@url_option
def migrate(url: str | None) -> None:
    """Create or upgrade the backend's schema (SQLite, PostgreSQL; Redis needs none)."""
    handle = _queue(url)

    async def run() -> None:
        async with handle:
            upgrade: Callable[[], Awaitable[list[int]]] | None = getattr(
                handle.backend, "migrate", None
            )
            if upgrade is not None:
                await upgrade()

    _run(run)
    click.echo("schema is up to date")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@main.command()
@url_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--api-key",
    envvar="QUEUEKIT_API_KEY",
    help="Bearer key clients must send; env QUEUEKIT_API_KEY. Required beyond loopback.",
)
def serve(url: str | None, host: str, port: int, api_key: str | None) -> None:
    """Serve the HTTP API (uvicorn); see README "Operating"."""
    if not api_key and not is_loopback(host):
        raise Failure(
            f"refusing to serve on {host} without an API key: set --api-key or "
            "QUEUEKIT_API_KEY (only loopback addresses may run without one)"
        )
    with _user_errors():
        import uvicorn

        from .api import create_app

    queue = _queue(url)
    app = create_app(queue, api_key=api_key or None)
    with _user_errors():
        uvicorn.run(app, host=host, port=port, log_level="info")


if __name__ == "__main__":  # pragma: no cover
    main()


__all__ = ["main"]

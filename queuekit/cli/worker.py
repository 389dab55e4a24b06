"""`queuekit worker`: run the tasks of a module until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import anyio
import click

from ..backends.memory import MemoryBackend
from ..errors import InvalidOptionError
from ..retention import Retention
from ..supervisor import WORKER_INDEX, Supervisor, usable_cores
from .output import clean
from .shared import Failure, load, open_queue, run, seconds_in, url_option, user_errors

RETENTION_ITEMS = ("completed", "cancelled", "dead", "activity", "interval")
"""What `--retention` sets: `Retention`'s arguments."""


class CleanFormatter(logging.Formatter):
    """Log lines without terminal control sequences: they carry handlers' error messages."""

    def format(self, record: logging.LogRecord) -> str:
        return clean(super().format(record))


def queue_limits(queues: str, concurrency: int) -> dict[str, int]:
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


def retention_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Check `--retention` as it is given (the text goes on to each worker process)."""
    if value is not None:
        retention_of(value)
    return value


def retention_of(value: str) -> Retention:
    """`completed=1d,dead=30d,interval=5m`: how long jobs of each finished state (and the
    activity by minute) are kept, and how often to prune."""
    seconds: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, _, age = item.partition("=")
        if name not in RETENTION_ITEMS or not age:
            raise click.BadParameter(f"{item!r}: use {', '.join(RETENTION_ITEMS)}=DURATION")
        seconds[name] = seconds_in(age)
    try:
        return Retention(**seconds)
    except InvalidOptionError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.argument("tasks_ref", metavar="MODULE:TASKS")
@url_option
@click.option("--queues", default="default", show_default=True, help="a,b or a=5,b=20")
@click.option("--concurrency", type=int, default=10, show_default=True)
@click.option("--schedules", "schedules_ref", metavar="MODULE:LIST", help="Schedules to fire.")
@click.option("--lease", type=float, default=30.0, show_default=True, help="Seconds.")
@click.option("--poll-interval", type=float, default=1.0, show_default=True, help="Seconds.")
@click.option("--shutdown-timeout", type=float, default=30.0, show_default=True, help="Seconds.")
@click.option(
    "--retention",
    callback=retention_option,
    metavar="STATE=DURATION,...",
    help="Prune finished jobs: completed=1d,cancelled=7d,dead=30d[,interval=1m].",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="Serve Prometheus metrics on 127.0.0.1:PORT (needs queuekit[metrics]); worker "
    "process N of --processes serves PORT+N-1.",
)
@click.option(
    "--processes",
    type=click.IntRange(1, 1024),
    default=usable_cores,
    show_default="the number of usable cores",
    help="Worker processes, each with --concurrency jobs at once, under one supervisor that "
    "restarts a crashed one and drains them all on SIGTERM.",
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
    retention: str | None,
    metrics_port: int | None,
    processes: int,
) -> None:
    """Run a worker for the tasks in MODULE:TASKS until SIGTERM or SIGINT (which drain it)."""
    from ..scheduler.schedule import Schedule
    from ..tasks import Tasks
    from ..worker import Worker

    tasks = load(tasks_ref, "tasks")
    if not isinstance(tasks, Tasks):
        raise Failure(f"{tasks_ref} is a {type(tasks).__name__}, not a queuekit.Tasks")
    schedules: list[Schedule] = []
    if schedules_ref is not None:
        loaded = load(schedules_ref, "schedules")
        schedules = list(loaded) if isinstance(loaded, list | tuple) else [loaded]
        if not all(isinstance(item, Schedule) for item in schedules):
            raise Failure(f"{schedules_ref} must be a list of queuekit.Schedule")
    index = os.environ.get(WORKER_INDEX)
    tag = f"[{index}] " if index else ""
    handler = logging.StreamHandler()
    handler.setFormatter(CleanFormatter(f"%(asctime)s %(levelname)s {tag}%(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    queue = open_queue(url)
    if processes > 1:
        if isinstance(queue.backend, MemoryBackend):
            raise Failure("a memory:// backend lives in one process: use --processes 1")
        env = {**os.environ, "QUEUEKIT_URL": url or ""}  # not on a command line: ps shows it
        supervisor = Supervisor(child_command(click.get_current_context()), processes, env=env)
        raise SystemExit(anyio.run(supervisor.run))
    if metrics_port is not None and index:
        metrics_port += int(index) - 1
    hooks: dict[str, Any] = {}
    metrics = None
    if metrics_port is not None:
        with user_errors():
            from ..metrics import Metrics
        metrics = Metrics()
        metrics.instrument(queue)
        hooks = {"before_job": [metrics.before_job], "after_job": [metrics.after_job]}
        metrics.serve(metrics_port)

    async def main() -> None:
        pool = Worker(
            queue,
            tasks,
            queues=queue_limits(queues, concurrency),
            concurrency=concurrency,
            lease=lease,
            poll_interval=poll_interval,
            shutdown_timeout=shutdown_timeout,
            schedules=schedules,
            retention=None if retention is None else retention_of(retention),
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

    run(main)


def child_command(context: click.Context) -> list[str]:
    """The command line of one worker process of the supervisor: this command's arguments and
    options as given (each under its own flag), the URL left to the environment, and
    `--processes 1`."""
    command = [sys.executable, "-m", "queuekit", "worker", context.params["tasks_ref"]]
    for param in context.command.params:
        value = context.params[param.name or ""]
        if isinstance(param, click.Option) and param.name not in ("processes", "url"):
            command += [] if value is None else [param.opts[0], str(value)]
    return [*command, "--processes", "1"]

"""`queuekit jobs`: list, show, replay, cancel, run now, delete, purge and prune jobs, by id or
filter."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import click

from ..errors import InvalidOptionError, JobNotFoundError, JobRunningError
from ..job import TERMINAL_STATUSES, AttemptRecord, Job, JobPage, JobStatus
from ..queue import RUNNABLE, Queue
from ..retention import Retention
from ..search import instant_of
from ..serialize import job_dict
from .output import age, echo, error_line, moment, print_json, table, terminal_width
from .shared import STATUSES, duration, json_option, open_queue, run, url_option
from .workflow import relations

UNFINISHED = [status for status in STATUSES if status not in TERMINAL_STATUSES]
NOT_RUNNING = [status for status in STATUSES if status != JobStatus.RUNNING]
RUNNABLE_STATUSES = [status.value for status in RUNNABLE]
F = Callable[..., Any]
BulkCall = Callable[..., Awaitable[int]]
"""`Queue.replay_all`, `cancel_all`, `run_now_all` or `delete_all`."""


def instant(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    """An option's point in time (a click callback): ISO 8601, or a duration before now."""
    if value is None:
        return None
    try:
        return instant_of(value, datetime.now(UTC))
    except InvalidOptionError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group()
def jobs() -> None:
    """List, show, replay, cancel, run now, delete, purge and prune jobs."""


@jobs.command("list")
@url_option
@json_option
@click.option("--queue")
@click.option("--type", "task_type", help="Only jobs of this task type.")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--cursor", help="The next_cursor of the previous page.")
@click.option("--error", help="Only jobs whose last error holds this text (any case).")
@click.option("--since", callback=instant, help="Only jobs created at or after this time.")
@click.option("--until", callback=instant, help="Only jobs created before this time.")
@click.option("--batch", "batch_id", metavar="ID", help="Only the jobs of this batch.")
def list_jobs(
    url: str | None,
    as_json: bool,
    queue: str | None,
    task_type: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
    error: str | None,
    since: datetime | None,
    until: datetime | None,
    batch_id: str | None,
) -> None:
    """Jobs newest first, a page at a time. Times for --since and --until: an ISO 8601 date
    and time (UTC unless it names a zone), or a duration ago (90s, 15m, 12h, 7d). A search
    by --error or time may give a short page with more to come."""
    handle = open_queue(url)

    async def main() -> JobPage:
        async with handle:
            return await handle.list_jobs(
                queue=queue,
                type=task_type,
                status=status,
                limit=limit,
                cursor=cursor,
                error=error,
                created_after=since,
                created_before=until,
                batch_id=batch_id,
            )

    page = run(main)
    if as_json:
        print_json({"jobs": [job_dict(j) for j in page.jobs], "next_cursor": page.next_cursor})
        return
    columns = ["id", "queue", "type", "status", "tries", "priority", "created", "due"]
    rows = [
        [
            job.id,
            job.queue,
            job.type,
            str(job.status),
            f"{job.attempts}/{job.max_attempts}",
            str(job.priority),
            moment(job.created_at),
            moment(job.scheduled_at),
        ]
        for job in page.jobs
    ]
    optional = ["due", "priority", "created"]
    if page.jobs:
        echo(
            table(columns, rows, width=terminal_width(), optional=optional, wrap=["queue", "type"])
        )
    else:
        echo("no jobs")
    if page.next_cursor is not None:
        echo(f"more: --cursor {page.next_cursor}")


@jobs.command()
@click.argument("job_id")
@url_option
@json_option
def show(job_id: str, url: str | None, as_json: bool) -> None:
    """One job: its parents and dependents, headers, payload, result, its attempts, last
    error with its traceback."""
    handle = open_queue(url)

    async def main() -> tuple[Job, list[str]]:
        async with handle:
            job = await handle.get_job(job_id)
            return job, [] if as_json else await relations(handle, job)

    job, related = run(main)
    if as_json:
        print_json(job_dict(job))
        return
    fields = job_dict(job)
    width = max(len(name) for name in fields)
    for name in ("id", "queue", "type", "status", "priority", "unique_key", "worker_id"):
        echo(f"{name:<{width}}  {fields[name] if fields[name] is not None else '-'}")
    for name, value in (
        ("limit_key", job.limit_key),
        ("debounce_key", job.debounce_key),
        ("batch_id", job.batch_id),
    ):
        echo(f"{name:<{width}}  {value or '-'}")
    echo(f"{'attempts':<{width}}  {job.attempts} of {job.max_attempts}")
    times = ("created_at", "scheduled_at", "expires_at", "started_at", "finished_at")
    for name in (*times, "lease_expires_at"):
        echo(f"{name:<{width}}  {fields[name] or '-'}")
    for line in related:
        echo(line)
    if job.headers:
        echo(f"headers\n{_pretty(job.headers)}")
    echo(f"payload\n{_pretty(job.payload)}")
    if job.result is not None:
        echo(f"result\n{_pretty(job.result)}")
    if job.history:
        echo(f"history\n{_history(job.history)}")
    if job.last_error:
        echo(f"last error\n{job.last_error}")


def _history(records: Sequence[AttemptRecord]) -> str:
    """The attempt records as a table, each error by its first line (--json has them whole)."""
    columns = ["attempt", "worker", "started", "took", "outcome", "error"]
    rows = [
        [
            str(record.number),
            record.worker_id,
            moment(record.started_at),
            age((record.finished_at - record.started_at).total_seconds()),
            str(record.outcome),
            (record.error or "").partition("\n")[0],
        ]
        for record in records
    ]
    return table(
        columns, rows, width=terminal_width(), optional=["took", "started"], wrap=["error"]
    )


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


# Repairing, one job at a time


def _each(
    url: str | None, ids: tuple[str, ...], action: Callable[[Queue, str], Awaitable[str]]
) -> None:
    """Apply `action` to each id, print its line; unknown ids are errors, reported at the end."""
    handle = open_queue(url)
    missing: list[str] = []

    async def main() -> None:
        async with handle:
            for job_id in ids:
                try:
                    echo(await action(handle, job_id))
                except JobNotFoundError:
                    missing.append(job_id)
                    error_line(f"no job with id {job_id!r}")

    run(main)
    if missing:
        sys.exit(1)


async def _replay(queue: Queue, job_id: str) -> str:
    job = await queue.replay(job_id)
    if job.status == JobStatus.PENDING and job.attempts == 0:
        return f"{job.id} replayed"
    return f"{job.id} left as {job.status} (only dead or cancelled jobs are replayed)"


async def _cancel(queue: Queue, job_id: str) -> str:
    job = await queue.cancel(job_id)
    return f"{job.id} {job.status}"


async def _run_now(queue: Queue, job_id: str) -> str:
    before = await queue.get_job(job_id)
    job = await queue.run_now(job_id)
    if job.status not in RUNNABLE:
        return f"{job.id} left as {job.status} (only waiting jobs are run now)"
    if job.scheduled_at == before.scheduled_at:
        return f"{job.id} {job.status}: due already"
    return f"{job.id} {job.status}: due now"


async def _delete(queue: Queue, job_id: str) -> str:
    try:
        deleted = await queue.delete_job(job_id)
    except JobRunningError:
        return f"{job_id} is running: not deleted (cancel it first)"
    if not deleted:
        raise JobNotFoundError(f"no job with id {job_id!r}")
    return f"{job_id} deleted"


# Repairing by filter: one library call, which works in bounded batches


class Progress:
    """A running count on stderr while a bulk operation works; only on a terminal."""

    def __init__(self, verb: str) -> None:
        self.verb = verb
        self.shown = False
        self.terminal = sys.stderr.isatty()

    def __call__(self, total: int) -> None:
        if self.terminal:
            click.echo(f"\r{self.verb} {total:,} jobs…", err=True, nl=False)
            self.shown = True

    def clear(self) -> None:
        if self.shown:
            click.echo("\r\x1b[K", err=True, nl=False)  # our own sequence: erase the count


def _filters(statuses: list[str]) -> Callable[[F], F]:
    """--queue, --type and --status: which jobs a bulk operation applies to."""

    def add(function: F) -> F:
        function = click.option("--status", type=click.Choice(statuses))(function)
        function = click.option("--type", "task_type", help="Jobs of this task type.")(function)
        return click.option("--queue", help="Jobs of this queue.")(function)

    return add


def _ids_or_filters(ids: tuple[str, ...], *filters: str | None) -> None:
    if ids and any(filters):
        raise click.UsageError("give job IDS or filters, not both")
    if not ids and not any(filters):
        raise click.UsageError("give job IDS, or filters to apply it to every matching job")


def _repair(
    url: str | None,
    ids: tuple[str, ...],
    one: Callable[[Queue, str], Awaitable[str]],
    verb: str,
    operation: Callable[[Queue], BulkCall],
    *,
    queue: str | None,
    task_type: str | None,
    status: str | None,
    ask: str | None,
) -> None:
    """Apply `one` to each of IDS (see `_each`), or else the bulk `operation` to every job the
    filters match and print how many it changed (`verb`); IDS and filters together are an
    error. With `ask` (the verb: "Delete"), the user confirms a bulk operation first."""
    _ids_or_filters(ids, queue, task_type, status)
    if ids:
        _each(url, ids, one)
        return
    what = f"{status or ''} jobs".lstrip()
    what += f" of type {task_type}" if task_type else ""
    what += f" of queue {queue}" if queue else ""
    if ask is not None:
        click.confirm(f"{ask} every {what}?", abort=True)
    handle = open_queue(url)
    progress = Progress(verb)

    async def main() -> int:
        async with handle:
            return await operation(handle)(
                queue=queue, type=task_type, status=status, on_progress=progress
            )

    try:
        count = run(main)
    finally:
        progress.clear()
    echo(f"{verb} {count:,} {what}")


yes_option = click.option("--yes", is_flag=True, help="Do not ask for confirmation.")


def _repair_command(
    statuses: list[str],
    one: Callable[[Queue, str], Awaitable[str]],
    verb: str,
    operation: Callable[[Queue], BulkCall],
    ask: str,
) -> Callable[[Callable[[], None]], click.Command]:
    """Make the decorated function (its name, its docstring for help) a `jobs` command that
    takes IDS or the filters --queue, --type and --status (one of `statuses`), and --yes: it
    applies `one` to each id, or `operation` to every job the filters match, asking first
    (`ask`, the verb) unless --yes."""

    def command(described: Callable[[], None]) -> click.Command:
        @jobs.command(described.__name__.replace("_", "-"), help=described.__doc__)
        @click.argument("ids", nargs=-1)
        @url_option
        @_filters(statuses)
        @yes_option
        def apply(
            ids: tuple[str, ...],
            url: str | None,
            queue: str | None,
            task_type: str | None,
            status: str | None,
            yes: bool,
        ) -> None:
            _repair(
                url,
                ids,
                one,
                verb,
                operation,
                queue=queue,
                task_type=task_type,
                status=status,
                ask=None if yes else ask,
            )

        return apply

    return command


@jobs.command()
@click.argument("ids", nargs=-1)
@url_option
@click.option("--all-dead", is_flag=True, help="Replay every dead job (of --queue, --type).")
@click.option("--queue", help="With --all-dead: only this queue's.")
@click.option("--type", "task_type", help="With --all-dead: only jobs of this task type.")
def replay(
    ids: tuple[str, ...],
    url: str | None,
    all_dead: bool,
    queue: str | None,
    task_type: str | None,
) -> None:
    """Run dead or cancelled jobs again, same ids, attempts reset: IDS, or --all-dead."""
    if not ids and not all_dead and (queue or task_type):
        raise click.UsageError("--queue and --type go with --all-dead")
    status = JobStatus.DEAD.value if all_dead else None
    _repair(
        url,
        ids,
        _replay,
        "replayed",
        lambda handle: handle.replay_all,
        queue=queue,
        task_type=task_type,
        status=status,
        ask=None,
    )


@_repair_command(UNFINISHED, _cancel, "cancelled", lambda handle: handle.cancel_all, "Cancel")
def cancel() -> None:
    """Cancel unfinished jobs: IDS, or every one the filters match (asks first).

    Running ones are stopped at once: the cancel is pushed to their worker.
    """


@_repair_command(
    RUNNABLE_STATUSES, _run_now, "made due", lambda handle: handle.run_now_all, "Run now"
)
def run_now() -> None:
    """Make jobs waiting to run (scheduled later, or failed and waiting for their retry) due
    now, attempts kept: IDS, or every one the filters match (asks first)."""


@_repair_command(NOT_RUNNING, _delete, "deleted", lambda handle: handle.delete_all, "Delete")
def delete() -> None:
    """Delete jobs that are not running: IDS, or every one the filters match (asks first)."""


@jobs.command()
@url_option
@click.option("--queue", required=True)
@click.option("--status", required=True, type=click.Choice(NOT_RUNNING))
@yes_option
def purge(url: str | None, queue: str, status: str, yes: bool) -> None:
    """Delete every job of a queue in one status (asks first)."""
    _repair(
        url,
        (),
        _delete,
        "deleted",
        lambda handle: handle.delete_all,
        queue=queue,
        task_type=None,
        status=status,
        ask=None if yes else "Delete",
    )


@jobs.command()
@url_option
@click.option("--older-than", callback=duration, help="Every finished state's retention.")
@click.option("--completed", callback=duration, help="How long completed jobs are kept.")
@click.option("--cancelled", callback=duration, help="How long cancelled jobs are kept.")
@click.option("--dead", callback=duration, help="How long dead jobs are kept.")
def prune(
    url: str | None,
    older_than: float | None,
    completed: float | None,
    cancelled: float | None,
    dead: float | None,
) -> None:
    """Delete finished jobs older than their retention, once (workers given a retention do
    it all the time). A state given no retention is kept: `--dead 30d` prunes dead jobs only.

    Durations: seconds, or 90s, 15m, 12h, 7d.
    """
    retention = Retention(
        completed=older_than if completed is None else completed,
        cancelled=older_than if cancelled is None else cancelled,
        dead=older_than if dead is None else dead,
    )
    if not retention.ages:
        raise click.UsageError(
            "say what to prune: --older-than, --completed, --cancelled or --dead"
        )
    handle = open_queue(url)

    async def main() -> int:
        async with handle:
            return await retention.apply(handle)

    echo(f"pruned {run(main)} jobs")

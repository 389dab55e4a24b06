"""`queuekit workers`: list the running workers; `queuekit workers drain ID` drains one."""

from __future__ import annotations

import click

from ..registry import WorkerInfo, drain_worker, list_workers
from .output import echo, moment, print_json, table, terminal_width
from .shared import json_option, open_queue, run, url_option

SHOWN_JOB_IDS = 3
"""Ids of running jobs a table row shows (`--json` gives all the entry has)."""
LIST = "list"


class WorkersGroup(click.Group):
    """`queuekit workers [--json]` lists: a first word that is no subcommand is `list`'s."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        helping = bool(args) and args[0] in ctx.help_option_names
        if not helping and (not args or args[0] not in self.commands):
            args = [LIST, *args]
        return super().parse_args(ctx, args)


@click.group(cls=WorkersGroup)
def workers() -> None:
    """List the running workers; drain one (for deploys).

    `queuekit workers` lists them, as `queuekit workers list` does.
    """


@workers.command(LIST)
@url_option
@json_option
def list_command(url: str | None, as_json: bool) -> None:
    """The running workers: host, pid, state, queues, running jobs, last beat.

    A worker is listed while it beats (every few seconds); one that stopped or went silent
    leaves the list.
    """
    handle = open_queue(url)

    async def main() -> list[WorkerInfo]:
        async with handle:
            return await list_workers(handle.backend)

    found = run(main)
    if as_json:
        print_json([info.to_dict() for info in found])
    elif not found:
        echo("no worker is running")
    else:
        echo(_table(found))


@workers.command()
@click.argument("worker_id", metavar="ID")
@url_option
def drain(worker_id: str, url: str | None) -> None:
    """Ask worker ID to stop claiming, finish its running jobs and exit (for deploys).

    The worker learns of it at its next beat, within a few seconds, and is listed as
    draining until it exits.
    """
    handle = open_queue(url)

    async def main() -> None:
        async with handle:
            await drain_worker(handle.backend, worker_id)

    run(main)
    echo(f"worker {worker_id} asked to drain: it finishes its running jobs, then exits")


def _table(found: list[WorkerInfo]) -> str:
    rows = []
    for info in found:
        jobs = info.job_ids[:SHOWN_JOB_IDS]
        more = info.running - len(jobs)
        rows.append(
            [
                info.id,
                info.host,
                str(info.pid),
                info.state,
                " ".join(f"{name}={slots}" for name, slots in info.queues.items()),
                str(info.running),
                " ".join(jobs) + (f" +{more}" if more > 0 else ""),
                moment(info.started_at),
                moment(info.last_seen),
                info.version,
            ]
        )
    columns = ["ID", "HOST", "PID", "STATE", "QUEUES", "RUNNING", "JOBS", "STARTED"]
    columns += ["LAST SEEN", "VERSION"]
    return table(
        columns,
        rows,
        width=terminal_width(),
        optional=["VERSION", "JOBS", "STARTED", "HOST", "PID"],
        wrap=["QUEUES", "ID"],
    )

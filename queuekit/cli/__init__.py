"""The `queuekit` command: run workers, enqueue, inspect and repair jobs, pause queues, serve.

Every command takes `--url` (or `QUEUEKIT_URL`); inspection commands print tables for people
and JSON with `--json` for scripts. A user's mistake, a wrong flag included, is one line on
stderr and exit status 1.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from .activity import activity
from .batch import batch
from .enqueue import enqueue
from .jobs import jobs
from .limits import hold, limits
from .migrate import migrate
from .output import error_line
from .queues import queues
from .schedules import schedules
from .serve import serve
from .stats import stats
from .tail import tail
from .worker import worker
from .workers import workers
from .workflow import workflow


class Main(click.Group):
    """The top group: it reports every error itself, as one line and exit status 1."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:
            code = super().main(*args, **{**kwargs, "standalone_mode": False})
        except click.exceptions.NoArgsIsHelpError as exc:  # `queuekit` alone: not a mistake
            click.echo(exc.ctx.get_help() if exc.ctx is not None else "")
            sys.exit(0)
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else "queuekit"
            error_line(f"{exc.format_message()} (see '{command} --help')")
            sys.exit(1)
        except click.ClickException as exc:
            error_line(exc.format_message())
            sys.exit(1)
        except click.Abort:
            error_line("Aborted.")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="queuekit")
def main() -> None:
    """queuekit: run workers, enqueue, inspect and repair jobs, pause and limit queues, serve."""


for command in (
    worker,
    workers,
    enqueue,
    jobs,
    queues,
    limits,
    hold,
    stats,
    activity,
    schedules,
    migrate,
    serve,
    tail,
    workflow,
    batch,
):
    main.add_command(command)


__all__ = ["main"]

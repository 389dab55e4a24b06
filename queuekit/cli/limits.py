"""`queuekit limits` shows, sets and clears a queue's limits; `queuekit hold` holds a queue."""

from __future__ import annotations

import click

from ..limits import Limits, LimitUsage
from ..serialize import usage_dict
from .output import age, echo, moment, print_json, table, terminal_width
from .shared import Failure, json_option, open_queue, run, url_option, user_errors

SHOW = "show"


class LimitsGroup(click.Group):
    """`queuekit limits [QUEUE]` shows: a first word that is no subcommand is `show`'s."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        helping = bool(args) and args[0] in ctx.help_option_names
        if not helping and (not args or args[0] not in self.commands):
            args = [SHOW, *args]
        return super().parse_args(ctx, args)


@click.group(cls=LimitsGroup)
def limits() -> None:
    """Show a queue's limits and how much of them is in use; set or clear them.

    `queuekit limits` shows every limited queue, `queuekit limits QUEUE` one queue in detail.
    """


@limits.command(SHOW)
@click.argument("queue", required=False)
@url_option
@json_option
def show(queue: str | None, url: str | None, as_json: bool) -> None:
    """Limits and usage: of QUEUE, or of every queue that has limits."""
    handle = open_queue(url)

    async def main() -> list[tuple[str, LimitUsage]]:
        async with handle:
            names = [queue] if queue is not None else sorted(await handle.limits())
            return [(name, await handle.limit_usage(name)) for name in names]

    usages = run(main)
    if as_json:
        rows = [usage_dict(name, usage) for name, usage in usages]
        print_json(rows[0] if queue is not None else rows)
    elif queue is not None:
        echo(_detail(*usages[0]))
    else:
        echo(_overview(usages) if usages else "no queue has limits")


@limits.command("set")
@click.argument("queue")
@click.option("--concurrency", type=int, help="At most N of the queue's jobs run at once.")
@click.option("--per-key", type=int, help="At most N run at once per limit_key.")
@click.option("--rate", type=int, help="At most N start per period in the whole queue.")
@click.option("--key-rate", type=int, help="At most N start per period per limit_key.")
@click.option(
    "--period", type=float, default=60.0, show_default=True, help="The rate window, in seconds."
)
@click.option("--ordered", is_flag=True, help="A key's jobs run one at a time, in enqueue order.")
@url_option
def set_limits(
    queue: str,
    concurrency: int | None,
    per_key: int | None,
    rate: int | None,
    key_rate: int | None,
    period: float,
    ordered: bool,
    url: str | None,
) -> None:
    """Replace QUEUE's limits with those given; every worker applies them from its next claim."""
    with user_errors():  # Limits checks every value: its error is the one line printed
        wanted = Limits(
            concurrency=concurrency,
            per_key=per_key,
            rate=rate,
            key_rate=key_rate,
            period=period,
            ordered=ordered,
        )
    if wanted.is_unlimited:
        raise Failure(
            "no limit given: pass --concurrency, --per-key, --rate, --key-rate or --ordered "
            f"(to remove the limits: queuekit limits clear {queue})"
        )
    handle = open_queue(url)

    async def main() -> None:
        async with handle:
            await handle.set_limits(queue, wanted)

    run(main)
    echo(f"queue {queue} limited: {describe(wanted)}")


@limits.command()
@click.argument("queue")
@url_option
def clear(queue: str, url: str | None) -> None:
    """Remove QUEUE's limits (holds already in place still end when they end)."""
    handle = open_queue(url)

    async def main() -> None:
        async with handle:
            await handle.set_limits(queue, None)

    run(main)
    echo(f"queue {queue} has no limits")


@click.command()
@click.argument("queue")
@click.argument("seconds", type=float)
@click.option("--key", help="Hold only the jobs of this limit_key.")
@url_option
def hold(queue: str, seconds: float, key: str | None, url: str | None) -> None:
    """Start no job of QUEUE (or only of its --key) for SECONDS, as a RateLimited does.

    A longer hold already in place stays. A hold applies whether or not the queue has limits.
    """
    handle = open_queue(url)

    async def main() -> None:
        async with handle:
            await handle.hold(queue, seconds, key=key)

    run(main)
    what = f"queue {queue}" if key is None else f"key {key!r} of queue {queue}"
    echo(f"{what} held for {age(seconds)}")


def describe(limits: Limits | None) -> str:
    """Limits in a few words: "concurrency 20, per key 2, key rate 100 per 1s"."""
    if limits is None:
        return "none"
    period = f"{limits.period:g}s"
    parts = []
    if limits.concurrency is not None:
        parts.append(f"concurrency {limits.concurrency}")
    if limits.per_key is not None:
        parts.append(f"per key {limits.per_key}")
    if limits.rate is not None:
        parts.append(f"rate {limits.rate} per {period}")
    if limits.key_rate is not None:
        parts.append(f"key rate {limits.key_rate} per {period}")
    if limits.ordered:
        parts.append("ordered")
    return ", ".join(parts) or "none"


def _of(used: int, limit: int | None) -> str:
    return str(used) if limit is None else f"{used}/{limit}"


def _overview(usages: list[tuple[str, LimitUsage]]) -> str:
    columns = ["queue", "limits", "running", "started", "window ends", "held until", "held keys"]
    rows = []
    for name, usage in usages:
        limits = usage.limits
        rows.append(
            [
                name,
                describe(limits),
                _of(usage.running, None if limits is None else limits.concurrency),
                _of(usage.started_in_window, None if limits is None else limits.rate),
                moment(usage.window_ends_at),
                moment(usage.held_until),
                str(len(usage.held_keys)),
            ]
        )
    optional = ["held keys", "window ends", "started"]
    return table(columns, rows, width=terminal_width(), optional=optional, wrap=["limits"])


def _detail(queue: str, usage: LimitUsage) -> str:
    limits = usage.limits
    lines = [f"queue       {queue}", f"limits      {describe(limits)}"]
    concurrency = None if limits is None else limits.concurrency
    lines.append(f"running     {_of(usage.running, concurrency)}")
    if usage.window_ends_at is not None:
        rate = None if limits is None else limits.rate
        started = _of(usage.started_in_window, rate)
        lines.append(f"started     {started} in the window ending {moment(usage.window_ends_at)}")
    lines.append(f"held until  {moment(usage.held_until)}")
    lines.append(f"held keys   {len(usage.held_keys)}")
    if usage.held_keys:
        held = sorted(usage.held_keys.items(), key=lambda item: (item[1], item[0]))
        rows = [[key, moment(until)] for key, until in held]
        lines.append(table(["held key", "until"], rows, width=terminal_width(), wrap=["held key"]))
    if usage.running_by_key:
        busiest = sorted(usage.running_by_key.items(), key=lambda item: (-item[1], item[0]))
        per_key = None if limits is None else limits.per_key
        rows = [[key, _of(count, per_key)] for key, count in busiest]
        lines.append(table(["key", "running"], rows, width=terminal_width(), wrap=["key"]))
    return "\n".join(lines)


__all__ = ["hold", "limits"]

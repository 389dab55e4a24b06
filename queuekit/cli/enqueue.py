"""`queuekit enqueue`: its flags are made from `queuekit.options.OPTIONS`, one per option."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from ..job import Job
from ..options import OPTIONS, Option
from ..serialize import job_dict
from .output import echo, print_json
from .shared import Failure, json_option, open_queue, run, url_option

F = Callable[..., Any]


def _time(context: click.Context, parameter: click.Parameter, value: str | None) -> Any:
    """An ISO 8601 time with its offset, such as 2030-01-01T09:00:00+01:00 or ...Z."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        message = f"{value!r} is not an ISO 8601 time like 2030-01-01T09:00Z"
        raise click.BadParameter(message) from None


def _flag(option: Option) -> Callable[[F], F]:
    """The click option for one enqueue option; `option.check` enforces its bounds."""
    if option.name == "headers":
        return click.option(
            "--header", "headers", multiple=True, metavar="KEY=VALUE", help=option.help
        )
    if option.name == "after":
        help = "A job it waits for (repeat for more); =run, =ignore or =trigger after the id "
        return click.option(
            "--after",
            "after",
            multiple=True,
            metavar="ID[=POLICY]",
            help=help + "sets what it does if that one fails (default cancel).",
        )
    flag = f"--{option.name.replace('_', '-')}"
    if option.name == "unique_states":
        return click.option(
            flag, option.name, multiple=True, metavar="STATE[,STATE]", help=option.help
        )
    if option.type is bool:
        return click.option(flag, option.name, is_flag=True, help=option.help)
    if option.type == list[str]:
        return click.option(flag, option.name, multiple=True, metavar="ID", help=option.help)
    if option.type is datetime:
        return click.option(flag, option.name, callback=_time, help=option.help)
    default = "" if option.default is None else f" [default: {option.default}]"
    return click.option(flag, option.name, type=option.type, help=option.help + default)


def enqueue_flags(function: F) -> F:
    """Add a flag per enqueue option, in the order of `OPTIONS`."""
    for option in reversed(OPTIONS):
        function = _flag(option)(function)
    return function


def _parents(given: tuple[str, ...]) -> list[dict[str, str]] | None:
    """`--after` values as parents: `ID` or `ID=POLICY` (ids hold no "=")."""
    if not given:
        return None
    parents = []
    for value in given:
        job_id, equals, policy = value.partition("=")
        parents.append({"id": job_id, "on_failure": policy} if equals else {"id": job_id})
    return parents


def _states(given: tuple[str, ...]) -> list[str] | None:
    """`--unique-states` values, each one state or several joined by commas."""
    if not given:
        return None
    return [state.strip() for value in given for state in value.split(",")]


def _headers(pairs: tuple[str, ...]) -> dict[str, str] | None:
    if not pairs:
        return None
    headers: dict[str, str] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals:
            raise Failure(f"--header takes KEY=VALUE, got {pair!r}")
        headers[key] = value
    return headers


@click.command()
@click.argument("type")
@click.argument("payload", default="null")
@url_option
@json_option
@enqueue_flags
def enqueue(type: str, payload: str, url: str | None, as_json: bool, **given: Any) -> None:
    """Enqueue a job of TYPE with a JSON PAYLOAD, e.g. '{"to": "a@example.com"}'."""
    try:
        value = json.loads(payload)
    except ValueError as exc:
        raise Failure(f"PAYLOAD is not valid JSON: {exc}") from None
    given["headers"] = _headers(given["headers"])
    given["after"] = _parents(given["after"])
    given["unique_states"] = _states(given["unique_states"])
    options = {name: item for name, item in given.items() if item is not None}
    handle = open_queue(url)

    async def main() -> Job:
        async with handle:
            return await handle.enqueue(type, value, **options)

    job = run(main)
    if as_json:
        print_json(job_dict(job))
    else:
        echo(f"{job.id} {job.status} in queue {job.queue}")

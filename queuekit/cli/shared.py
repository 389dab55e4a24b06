"""What every command shares: `--url` and `--json`, the backend handle, and user errors."""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import anyio
import click

from ..errors import QueueKitError
from ..job import JobStatus
from ..queue import Queue, connect

T = TypeVar("T")

STATUSES = [status.value for status in JobStatus]
EXTRAS_BY_MODULE = {
    "asyncpg": "postgres",
    "redis": "redis",
    "starlette": "api",
    "uvicorn": "api",
    "prometheus_client": "metrics",
}
"""The `pip install 'queuekit[...]'` extra that provides each optional module."""


class Failure(click.ClickException):
    """A user's mistake: `main` prints it as one line on stderr and exits with status 1."""


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can cause into one clear line instead of a traceback."""
    try:
        yield
    except QueueKitError as exc:
        raise Failure(str(exc)) from None
    except ModuleNotFoundError as exc:
        extra = EXTRAS_BY_MODULE.get((exc.name or "").split(".")[0])
        advice = f": pip install 'queuekit[{extra}]'" if extra else ""
        raise Failure(f"{exc}{advice}") from None
    except TimeoutError as exc:
        raise Failure(f"timed out: {exc}") from None
    except OSError as exc:
        raise Failure(f"cannot reach the backend: {exc}") from None


def run(main: Callable[[], Awaitable[T]]) -> T:
    """Run a command's async body, its user errors as `Failure`."""
    with user_errors():
        return anyio.run(main)


def open_queue(url: str | None) -> Queue:
    """The `Queue` for `--url`; not yet connected (use `async with`)."""
    if not url:
        raise Failure("no backend URL: pass --url or set QUEUEKIT_URL (e.g. sqlite:///jobs.db)")
    with user_errors():
        return connect(url)


def load(reference: str, what: str) -> Any:
    """The object `module.path:name` names, imported like `python -m` would find it."""
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise Failure(f"{what} must look like module.path:name, got {reference!r}")
    if "" not in sys.path:
        sys.path.insert(0, "")  # like `python -m`: modules in the current folder are found
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except Exception as exc:  # the user's module may raise anything while it is imported
        raise Failure(f"cannot load {what} {reference!r}: {_one_line(exc)}") from None
    return target


def _one_line(exc: Exception) -> str:
    """An exception as `Type: message (file:line)`, the line being where it was raised."""
    if isinstance(exc, ImportError | AttributeError | SyntaxError):
        return str(exc)  # these already name the module, attribute or file and line
    where = ""
    if exc.__traceback__ is not None:
        frame = exc.__traceback__
        while frame.tb_next is not None:
            frame = frame.tb_next
        where = f" ({frame.tb_frame.f_code.co_filename}:{frame.tb_lineno})"
    return f"{type(exc).__name__}: {exc}{where}"


UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
"""Seconds per unit of a `duration`."""


def duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    """An option's duration (a click callback): seconds, or 90s, 15m, 12h, 7d."""
    return None if value is None else seconds_in(value)


def seconds_in(text: str) -> float:
    """The seconds a duration such as 90, 90s, 15m, 12h or 7d stands for."""
    cleaned = text.strip().lower()
    factor = UNITS.get(cleaned[-1:])
    try:
        seconds = float(cleaned[:-1] if factor else cleaned) * (factor or 1)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise click.BadParameter(f"{text!r} is not a duration: use seconds or 90s, 15m, 12h, 7d")
    return seconds


url_option = click.option(
    "--url",
    envvar="QUEUEKIT_URL",
    help="Backend URL (sqlite:///jobs.db, postgresql://…, redis://…); env QUEUEKIT_URL.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")

"""The `queuekit_*` options of a backend URL: one parser for the SQLite, PostgreSQL and Redis URLs.

Each backend names its options (without the prefix) and how to read each value: a reader
checks the value's form (a flag, a number); what the value may be (a range, a mode's name) is
checked once, by the backend's constructor, whose `InvalidOptionError` `options_of_url` reports
as the URL's fault.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeAlias
from urllib.parse import SplitResult, parse_qsl, urlsplit

from ..errors import InvalidOptionError, InvalidURLError

PREFIX = "queuekit_"
Read: TypeAlias = Callable[[str, str], Any]
"""Reads one option's value: (its name in the URL, the text) -> the constructor's argument."""
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def text(_name: str, value: str) -> str:
    return value


def lowered(_name: str, value: str) -> str:
    """A word whose case does not matter (a mode, a level)."""
    return value.strip().lower()


def flag(name: str, value: str) -> bool:
    word = value.strip().lower()
    if word not in TRUE + FALSE:
        raise InvalidURLError(f"URL option {name}={value!r} must be true or false")
    return word in TRUE


def count(name: str, value: str) -> int:
    """A whole number, 0 or more."""
    if not value.isdecimal():
        raise InvalidURLError(f"URL option {name}={value!r} must be a whole number")
    return int(value)


def number(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise InvalidURLError(f"URL option {name}={value!r} must be a number") from None


def read_url(
    url: str, known: Mapping[str, tuple[str, Read]], kind: str
) -> tuple[SplitResult, dict[str, Any], list[tuple[str, str]]]:
    """Split a `kind` URL into its parts, its `queuekit_*` options as constructor arguments,
    and the other items of its query (for the driver) in their order.

    `known` maps an option's name without the prefix to its constructor keyword and reader;
    an unknown `queuekit_*` option, or a URL that does not parse, raises `InvalidURLError`.
    """
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError as exc:
        raise InvalidURLError(f"malformed {kind} URL: {exc}") from None
    options: dict[str, Any] = {}
    rest: list[tuple[str, str]] = []
    for name, value in query:
        if not name.startswith(PREFIX):
            rest.append((name, value))
            continue
        option = known.get(name.removeprefix(PREFIX))
        if option is None:
            names = ", ".join(PREFIX + key for key in known)
            raise InvalidURLError(f"unknown option {name!r} in {kind} URL; queuekit knows {names}")
        keyword, read = option
        options[keyword] = read(name, value)
    return parts, options, rest


@contextlib.contextmanager
def options_of_url(kind: str) -> Iterator[None]:
    """Around building a backend from a URL: an option it refuses makes the URL bad."""
    try:
        yield
    except InvalidOptionError as exc:
        raise InvalidURLError(f"bad {kind} URL option: {exc}") from None

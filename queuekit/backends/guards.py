"""The guards every networked or file backend puts around its driver: open, and reachable."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TypeVar

from ..errors import BackendUnavailableError

T = TypeVar("T")


def require_open(handle: T | None, backend: str) -> T:
    """`handle` (a pool, client or connection), which is None while `backend` is closed."""
    if handle is None:
        raise BackendUnavailableError(f"the {backend} backend is not open")
    return handle


@contextlib.contextmanager
def unavailable_on(
    errors: tuple[type[BaseException], ...],
    server: str,
    *,
    when: Callable[[BaseException], bool] | None = None,
) -> Iterator[None]:
    """Report `errors` (the driver's lost, refused or locked connections) as
    `BackendUnavailableError`, naming `server` and the driver's error; with `when`, only
    those of them it says yes to (a driver whose one error class also covers statements the
    server refused, which are raised as they are)."""
    try:
        yield
    except errors as exc:
        if when is not None and not when(exc):
            raise
        raise BackendUnavailableError(
            f"{server} is unavailable: {type(exc).__name__}: {exc}"
        ) from exc

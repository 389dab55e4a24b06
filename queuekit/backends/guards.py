"""The guards every networked or file backend puts around its driver: open, and reachable."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TypeVar

from ..errors import BackendUnavailableError

T = TypeVar("T")


def require_open(handle: T | None, backend: str) -> T:
    """`handle` (a pool, client or connection), which is None while `backend` is closed."""
    if handle is None:
        raise BackendUnavailableError(f"the {backend} backend is not open")
    return handle


@contextlib.contextmanager
def unavailable_on(errors: tuple[type[BaseException], ...], server: str) -> Iterator[None]:
    """Report `errors` (the driver's lost, refused or locked connections) as
    `BackendUnavailableError`, naming `server` and the driver's error."""
    try:
        yield
    except errors as exc:
        raise BackendUnavailableError(
            f"{server} is unavailable: {type(exc).__name__}: {exc}"
        ) from exc

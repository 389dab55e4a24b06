"""How the tests get a backend of each kind: one `BackendSetup` per backend name."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from queuekit import Backend
from queuekit.backends.memory import MemoryBackend
from queuekit.backends.sqlite import SQLiteBackend

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@dataclass
class BackendSetup:
    """One isolated store for one test: a URL for other processes, and a way to open clients."""

    name: str
    url: str | None
    """How another process reaches the same store; None for memory."""
    make: Callable[[], Backend]
    """A new, unopened client of the same store (memory returns its one instance)."""


def skip_or_fail(reason: str) -> None:
    """Skip a server test with `reason`; under CI=true a missing server fails the run instead."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true, so a skipped server test is a failure)")
    pytest.skip(reason)


@asynccontextmanager
async def memory_setup(tmp_path: Path) -> AsyncIterator[BackendSetup]:
    backend = MemoryBackend()
    yield BackendSetup("memory", None, lambda: backend)


@asynccontextmanager
async def sqlite_setup(tmp_path: Path) -> AsyncIterator[BackendSetup]:
    path = tmp_path / "jobs.db"
    yield BackendSetup("sqlite", f"sqlite:///{path}", lambda: SQLiteBackend(str(path)))


SETUPS: dict[str, Callable[[Path], AbstractAsyncContextManager[BackendSetup]]] = {
    "memory": memory_setup,
    "sqlite": sqlite_setup,
}
DURABLE = [name for name in SETUPS if name != "memory"]

"""Fixtures shared by every test: a backend of each kind, opened and isolated per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import queuekit
from queuekit import Backend

from .setups import DURABLE, SETUPS, BackendSetup


@pytest.fixture(params=list(SETUPS))
async def backend_setup(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BackendSetup]:
    async with SETUPS[request.param](tmp_path) as setup:
        yield setup


@pytest.fixture(params=DURABLE)
async def durable_setup(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BackendSetup]:
    """A backend another OS process can reach: every kind but memory."""
    async with SETUPS[request.param](tmp_path) as setup:
        yield setup


@pytest.fixture
async def backend(backend_setup: BackendSetup) -> AsyncIterator[Backend]:
    client = backend_setup.make()
    await client.open()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def queue(backend: Backend) -> queuekit.Queue:
    """A handle on the already open `backend`."""
    return queuekit.Queue(backend)

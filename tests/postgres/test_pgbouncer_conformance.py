"""The whole conformance suite through PgBouncer in transaction mode, polling for work.

Every conformance test is collected here a second time (pytest collects the test functions
a module holds, imported or not), and this module's `backend_setup` replaces the four
backends of tests/conftest.py with one: PostgreSQL reached only through PgBouncer, with
`queuekit_pgbouncer=transaction` and no LISTEN connection.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator

import pytest

import queuekit
from queuekit import InvalidOptionError

from .. import conformance
from ..setups import BackendSetup
from .pgbouncer import pgbouncer_setup

pytestmark = pytest.mark.slow

NEEDS_LISTEN = {"test_events", "test_job_events"}
"""Conformance modules this poll-only harness leaves out: events travel by NOTIFY, which a
backend without a LISTEN connection refuses to subscribe to (tested below)."""

for _found in pkgutil.iter_modules(conformance.__path__):
    if _found.name.startswith("test_") and _found.name not in NEEDS_LISTEN:
        _module = importlib.import_module(f"{conformance.__name__}.{_found.name}")
        for _test, _function in vars(_module).items():
            if _test.startswith("test_") and callable(_function):
                globals()[f"{_found.name}__{_test.removeprefix('test_')}"] = _function


@pytest.fixture
async def backend_setup() -> AsyncIterator[BackendSetup]:
    async with pgbouncer_setup("transaction") as setup:
        yield setup


async def test_events_are_refused_without_a_listen_connection(
    backend_setup: BackendSetup,
) -> None:
    async with queuekit.connect(backend_setup.url or "") as queue:
        with pytest.raises(InvalidOptionError, match="listen_dsn"):
            async with queue.events():
                pass
        await queue.enqueue("t")  # publishing still works: NOTIFY goes through PgBouncer

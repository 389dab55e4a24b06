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

from .. import conformance
from ..setups import BackendSetup
from .pgbouncer import pgbouncer_setup

pytestmark = pytest.mark.slow

for _found in pkgutil.iter_modules(conformance.__path__):
    if _found.name.startswith("test_"):
        _module = importlib.import_module(f"{conformance.__name__}.{_found.name}")
        for _test, _function in vars(_module).items():
            if _test.startswith("test_") and callable(_function):
                globals()[f"{_found.name}__{_test.removeprefix('test_')}"] = _function


@pytest.fixture
async def backend_setup() -> AsyncIterator[BackendSetup]:
    async with pgbouncer_setup("transaction") as setup:
        yield setup

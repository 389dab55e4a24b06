"""Fixtures shared by every test: a backend of each kind, opened and isolated per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from pathlib import Path

import pytest
from _pytest.terminal import TerminalReporter

import queuekit
from queuekit import Backend

from .setups import DURABLE, IN_CI, SERVERS_HINT, SETUPS, BackendSetup, private_servers


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop the servers this run started for itself; under CI=true, a skipped test fails it."""
    private_servers.close()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if IN_CI and reporter is not None and reporter.stats.get("skipped"):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    """One line for every test skipped for want of server programs, instead of one each."""
    skipped = terminalreporter.stats.get("skipped", [])
    wanting = sum(SERVERS_HINT in str(report.longrepr) for report in skipped)
    if wanting:
        terminalreporter.write_line(
            f"{wanting} tests skipped: no PostgreSQL or Redis to test on; {SERVERS_HINT}",
            yellow=True,
        )
    if IN_CI and skipped:
        terminalreporter.write_line(f"CI=true: {len(skipped)} skipped, so the run fails", red=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport() -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Captured output with its lone surrogates escaped: the tests of hostile text log some,
    and pytest-xdist, which carries every report to the main process as UTF-8, would crash."""
    report = yield
    report.sections = [
        (title, text.encode("utf-8", "backslashreplace").decode("utf-8"))
        for title, text in report.sections
    ]
    return report


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

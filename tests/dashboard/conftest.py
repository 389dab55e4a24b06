"""A headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, one per test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import pytest

from ..setups import skip_or_fail

if TYPE_CHECKING:
    from playwright.async_api import Browser

CHROMIUM = os.environ.get("QUEUEKIT_TEST_CHROMIUM", "/usr/bin/chromium")
REBOUND_HOST = "evil.example"
"""A name the rebinding browser resolves to 127.0.0.1, as an attacker's DNS would."""


@asynccontextmanager
async def chromium(*args: str) -> AsyncIterator[Browser]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        skip_or_fail("playwright is not installed: pip install -e '.[dev]'")
    if not os.access(CHROMIUM, os.X_OK):
        skip_or_fail(f"no Chromium at {CHROMIUM}: apt-get install chromium (see .ci/run)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", *args]
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


@pytest.fixture
async def rebinding_browser() -> AsyncIterator[Browser]:
    """A Chromium whose DNS answers 127.0.0.1 for `REBOUND_HOST`."""
    async with chromium(f"--host-resolver-rules=MAP {REBOUND_HOST} 127.0.0.1") as launched:
        yield launched

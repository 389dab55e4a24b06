"""`queuekit serve`: refuses weak keys and secrets; with one secret, sessions outlive a restart."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from ..cli.test_cli import QUEUEKIT, ROOT, fails

KEY = "serve-test-key-0123456"


def test_short_keys_and_secrets_are_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    assert "api_key is 5 characters: use at least 16" in fails(
        "serve", "--api-key", "short", url=url
    )
    assert "at least 16" in fails("serve", env={"QUEUEKIT_API_KEY": "x" * 15}, url=url)
    assert "secret is 6 characters: use at least 16" in fails(
        "serve", "--api-key", KEY, "--secret", "abcdef", url=url
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(url: str, secret: str) -> Iterator[str]:
    """`queuekit serve` in a process of its own, until it answers; stopped afterwards."""
    port = free_port()
    env = {**os.environ, "QUEUEKIT_URL": url, "QUEUEKIT_API_KEY": KEY, "QUEUEKIT_SECRET": secret}
    process = subprocess.Popen(
        [QUEUEKIT, "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "queuekit serve exited"
            try:
                httpx.get(f"{base}/dashboard/login", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "queuekit serve did not start"
                time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_session_outlives_a_restart_with_the_same_secret(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    secret = "one-secret-for-every-process"
    with served(url, secret) as base, httpx.Client(base_url=base) as browser:
        login = browser.get("/dashboard/login").text
        token = re.search(r'name="csrf" value="([^"]+)"', login)
        assert token is not None
        done = browser.post("/dashboard/login", data={"key": KEY, "csrf": token.group(1)})
        assert done.status_code == 303
        cookies = dict(browser.cookies)
    # Restarted (or another process behind the same proxy): the session holds, with this secret.
    for other_secret, status in ((secret, 200), ("another-secret-entirely", 401)):
        with served(url, other_secret) as base, httpx.Client(cookies=cookies) as browser:
            assert browser.get(f"{base}/dashboard/fragments/queues").status_code == status

"""The API against its own OpenAPI document, property-based (schemathesis), on SQLite.

The app runs in uvicorn in a thread, with its own event loop, as `queuekit serve` runs it.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings

import queuekit
from queuekit.api import create_app
from queuekit.validation import NAME_PATTERN
from queuekit.web.api import openapi_document

KEY = "openapi-test-key-0123"
schema = schemathesis.openapi.from_dict(openapi_document())
# Text holds no NUL (refused in unique keys, and by PostgreSQL): a rule JSON Schema cannot state.
schema.config.generation.update(allow_x00=False)


@schema.hook
def map_body(context: schemathesis.HookContext, body: Any) -> Any:
    """Keep a generated `run_at` and `expires_at` within a century of now, the expiry after
    the start, and parents (`after`) that exist: bounds JSON Schema cannot state. A parent id
    becomes a seeded job's; anything else in `after` (what a negative case put there) stays."""
    jobs = body.get("jobs", [body]) if isinstance(body, dict) else []
    # Negative cases put anything where the list goes (`{"jobs": false}`): leave those be.
    for job in jobs if isinstance(jobs, list) else []:
        if not isinstance(job, dict):
            continue
        for name, year in (("run_at", "2030"), ("expires_at", "2032")):
            if isinstance(job.get(name), str):
                job[name] = re.sub(r"^\d{4}-", f"{year}-", job[name])
        if job.get("delay") is not None and job.get("expires_in") is not None:
            del job["expires_in"]  # an expiry within the delay is refused
        if isinstance(job.get("after"), list):
            job["after"] = [_existing(item, n) for n, item in enumerate(job["after"])]
    return body


SEEDED = 50
"""Jobs the server holds from the start, with the ids `seed-<n>`."""


def _existing(parent: Any, n: int) -> Any:
    """A generated parent made one that exists: the n-th seeded job (ids differ in a list)."""
    if isinstance(parent, str) and NAME_PATTERN.fullmatch(parent):
        return f"seed-{n % SEEDED}"
    named = parent.get("id") if isinstance(parent, dict) else None
    if isinstance(named, str) and NAME_PATTERN.fullmatch(named):
        return {**parent, "id": f"seed-{n % SEEDED}"}
    return parent


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path: Path = tmp_path_factory.mktemp("api") / "jobs.db"
    app = create_app(queuekit.connect(f"sqlite:///{path}"), api_key=KEY)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while not uv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    # Some jobs, so the routes that take ids also see real ones, and parents exist.
    for n in range(SEEDED):
        httpx.post(
            f"{url}/v1/jobs",
            json={"type": "seed", "payload": {"n": n}, "queue": "q", "id": f"seed-{n}"},
            headers={"Authorization": f"Bearer {KEY}"},
        ).raise_for_status()
    try:
        yield url
    finally:
        uv.should_exit = True
        thread.join(10)


@schema.parametrize()
@settings(
    max_examples=50,
    derandomize=True,  # the same cases every run: CI stays reproducible
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_matches_its_openapi_document(server: str, case: schemathesis.Case[Any]) -> None:
    case.call_and_validate(base_url=server, headers={"Authorization": f"Bearer {KEY}"})


def test_unauthenticated_calls_are_refused_per_the_document(server: str) -> None:
    response = httpx.get(f"{server}/v1/jobs")
    assert response.status_code == 401 and response.json() == {"error": "missing or wrong API key"}

"""Conformance: `current_job().transaction(...)` takes the SQL backends' own driver connections
and is refused, storing nothing, elsewhere (tests/postgres and tests/sqlite run it for real)."""

from __future__ import annotations

import pytest

from queuekit import InvalidConnectionError, InvalidOptionError, JobStatus, Queue
from queuekit.backend import FencedBackend
from queuekit.context import JobContext

from .helpers import claim_one


async def test_a_transaction_needs_a_sql_backend_and_its_driver(queue: Queue) -> None:
    await queue.enqueue("t")
    claimed = await claim_one(queue.backend)
    context = JobContext(job=claimed, state={}, worker_id="w", queue=queue)
    fenced = isinstance(queue.backend, FencedBackend)
    with pytest.raises(InvalidConnectionError if fenced else InvalidOptionError):
        async with context.transaction(object()):
            pytest.fail("the block must not run")
    stored = await queue.get_job(claimed.id)
    assert stored.status is JobStatus.RUNNING and stored.attempt == claimed.attempt
    assert not context.completed and not context.lease_lost

"""Unique keys, debounce and batches against a real Redis Cluster: their conformance tests, and
a batch bigger than one enqueue chunk.

(test_cluster.py runs the older conformance modules the same way, on the same kind of cluster.)
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest

import queuekit
from queuekit import JobStatus
from queuekit.backends.redis.enqueue import CHUNK_WEIGHT

from ..conformance import test_batches, test_debounce, test_uniqueness
from ..setups import BackendSetup
from .server import LocalCluster
from .test_cluster import FIXTURES, ConformanceTest, cluster, cluster_setup
from .test_cluster import test_conformance_on_a_cluster as run_on_a_cluster

__all__ = ["cluster", "cluster_setup"]  # the fixtures this module's tests use

pytestmark = pytest.mark.slow


def _conformance_tests() -> Iterator[Any]:
    for module in (test_batches, test_debounce, test_uniqueness):
        for name, function in vars(module).items():
            if (
                name.startswith("test_")
                and inspect.iscoroutinefunction(function)
                and set(inspect.signature(function).parameters) <= FIXTURES
            ):
                yield pytest.param(function, id=f"{module.__name__.split('.')[-1]}::{name}")


@pytest.mark.parametrize("conformance_test", list(_conformance_tests()))
async def test_keys_and_batches_on_a_cluster(
    conformance_test: ConformanceTest, cluster: LocalCluster, cluster_setup: BackendSetup
) -> None:
    await run_on_a_cluster(conformance_test, cluster, cluster_setup)


async def test_a_big_batch_goes_in_chunks_on_a_cluster(cluster_setup: BackendSetup) -> None:
    """A call bigger than one chunk, with a callback waiting for more parents than a chunk
    takes: the two-step enqueue per chunk, then `link` calls in the callback's slot."""
    backend = cluster_setup.make()
    await backend.open()
    queue = queuekit.Queue(backend)
    size = CHUNK_WEIGHT + 500
    try:
        batch = queuekit.batch(
            *(queuekit.new_job("member", n) for n in range(size)),
            on_success=queuekit.new_job("on_success"),
            on_dead=queuekit.new_job("on_dead"),
            id="big",
        )
        jobs = await queue.enqueue_many(batch)
        success, dead = jobs[size:]
        assert (success.status, dead.status) == (JobStatus.WAITING, JobStatus.WAITING)
        first = await backend.claim({"default": 1}, limit=1, lease=60, worker_id="w")
        assert await backend.fail(first[0].attempt, "boom", retry_in=None) == JobStatus.DEAD
        assert (await queue.get_job(dead.id)).status == JobStatus.PENDING
        assert (await queue.get_job(success.id)).status == JobStatus.CANCELLED
        counts = await queue.batch_counts("big")
        assert (counts.dead, counts.pending, counts.total) == (1, size - 1, size)
    finally:
        await backend.close()

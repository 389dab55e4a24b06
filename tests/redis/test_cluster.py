"""The conformance suite against a real three-node Redis Cluster.

Queues spread over the nodes' slots, so every cross-queue path (claims across queues,
listing, stats, rescue, pruning, wake-ups on several queues) goes through several nodes.
The `backend` the tests get wraps a `redis.asyncio.cluster.RedisCluster` client; the other
clients of a test (`backend_setup.make()`) use a `?queuekit_cluster=true` URL.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

import queuekit
from queuekit import InvalidOptionError, JobStatus, OnFailure, Parent
from queuekit.backends.redis import RedisBackend

from ..conformance import (
    test_activity,
    test_bulk,
    test_claim,
    test_enqueue,
    test_events,
    test_inspection,
    test_job_events,
    test_leases,
    test_limits,
    test_progress,
    test_push_cancel,
    test_repair,
    test_validation,
    test_workers,
    test_workflows,
)
from ..setups import BackendSetup, with_url_options
from ..waiting import eventually
from .server import LocalCluster, new_prefix
from .test_scripts import check_enqueue

# Without redis-server and redis-cli, LocalCluster.start skips, and fails under CI=true.
pytestmark = pytest.mark.slow
FIXTURES = {"queue", "backend", "backend_setup"}
ConformanceTest = Callable[..., Awaitable[None]]


def _conformance_tests() -> Iterator[Any]:
    """Every async conformance test that needs only the standard fixtures."""
    modules = (
        test_activity,
        test_bulk,
        test_claim,
        test_enqueue,
        test_events,
        test_inspection,
        test_job_events,
        test_leases,
        test_limits,
        test_progress,
        test_push_cancel,
        test_repair,
        test_validation,
        test_workers,
        test_workflows,
    )
    for module in modules:
        for name, function in vars(module).items():
            if (
                name.startswith("test_")
                and inspect.iscoroutinefunction(function)
                and set(inspect.signature(function).parameters) <= FIXTURES
            ):
                yield pytest.param(function, id=f"{module.__name__.split('.')[-1]}::{name}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    nodes = LocalCluster(tmp_path_factory.mktemp("cluster"))
    nodes.start()
    try:
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
def cluster_setup(cluster: LocalCluster) -> BackendSetup:
    """A random prefix on the cluster (which lives for this module only)."""
    prefix = new_prefix()
    url = with_url_options(cluster.url, queuekit_prefix=prefix, queuekit_cluster="true")
    return BackendSetup("redis-cluster", url, lambda: RedisBackend(url, strict_keys=True))


async def test_queues_on_several_nodes_work_as_one(
    cluster: LocalCluster, cluster_setup: BackendSetup
) -> None:
    assert cluster_setup.url is not None
    backend = RedisBackend(cluster_setup.url, strict_keys=True)
    queue = queuekit.Queue(backend)
    names = [f"q{n}" for n in range(8)]
    async with queue:
        client = backend._calls.opened().client
        assert isinstance(client, RedisCluster)
        nodes = {
            client.nodes_manager.get_node_from_slot(
                key_slot(backend._keys.of_queue(name, "ready").encode())
            )
            for name in names
        }
        assert len(nodes) > 1, "the queues should spread over the nodes"
        await queue.enqueue_many(
            queuekit.new_job("t", {"n": n}, queue=name, priority=n) for n, name in enumerate(names)
        )
        claimed = await backend.claim(dict.fromkeys(names, 1), limit=3, lease=30, worker_id="w")
        assert [job.payload["n"] for job in claimed] == [7, 6, 5]
        assert await queue.list_queues() == names
        page = await queue.list_jobs(limit=5)
        assert [job.payload["n"] for job in page.jobs] == [7, 6, 5, 4, 3]

        # A wait on queues of several nodes wakes when any of them gets a job.
        for name in names:
            await queue.purge(name, "pending")
        await backend.wait_for_work(names, timeout=0.01)  # takes the enqueue's tokens
        started = anyio.current_time()
        async with anyio.create_task_group() as group:
            group.start_soon(backend.wait_for_work, names, 60.0)
            await anyio.sleep(0.05)
            await queue.enqueue("t", queue=names[-1])
        assert anyio.current_time() - started < 30, "woken by the enqueue, not the timeout"


async def test_a_lost_connection_wakes_a_wait_across_nodes(
    cluster: LocalCluster, cluster_setup: BackendSetup
) -> None:
    """A pop that loses its connection is a wake-up: the caller looks again, as after any."""
    assert cluster_setup.url is not None
    backend = RedisBackend(cluster_setup.url, strict_keys=True)
    queue = queuekit.Queue(backend)
    names = [f"q{n}" for n in range(8)]
    controls = [Redis(port=server.port, decode_responses=True) for server in cluster.servers]

    async def blocked_pops() -> list[tuple[Redis, str]]:
        """(node, client id) of each connection blocked in a pop."""
        return [
            (control, client["id"])
            for control in controls
            for client in await control.client_list()
            if "b" in client["flags"]
        ]

    async def all_blocked() -> bool:
        return len(await blocked_pops()) == len(names)

    try:
        async with queue:
            started = anyio.current_time()
            async with anyio.create_task_group() as group:
                group.start_soon(backend.wait_for_work, names, 60.0)
                await eventually(all_blocked, "one pop per queue blocks")
                for control, client_id in await blocked_pops():
                    await control.client_kill_filter(_id=client_id)
            assert anyio.current_time() - started < 30, "woken by the lost connections"
            await queue.enqueue("t", {"after": "the kill"}, queue=names[0])
            claimed = await backend.claim({names[0]: 1}, limit=1, lease=30, worker_id="w")
            assert [job.payload for job in claimed] == [{"after": "the kill"}]
    finally:
        for control in controls:
            await control.aclose()


async def test_a_cluster_enqueue_reserves_then_stores(
    cluster: LocalCluster, cluster_setup: BackendSetup
) -> None:
    """A Cluster keeps the index and each queue in slots of their own: two round trips."""
    backend = RedisBackend(cluster_setup.url or "", strict_keys=True)
    await backend.open()
    raw = RedisCluster.from_url(cluster.url, decode_responses=True)
    try:
        rounds = await check_enqueue(backend, raw)  # type: ignore[arg-type]
    finally:
        await backend.close()
        await raw.aclose()
    # One reservation per index shard the ids fall in, beside the naming of new queues.
    assert rounds[0] == ["reserve", "name_queues", "enqueue"]
    # (then the reservations of the duplicates are given back)
    assert [name for name in rounds[1] if name != "reserve"] == [
        "name_queues",
        "enqueue",
        "enqueue",
        "unindex",
    ]


@pytest.mark.parametrize("conformance_test", list(_conformance_tests()))
async def test_conformance_on_a_cluster(
    conformance_test: ConformanceTest, cluster: LocalCluster, cluster_setup: BackendSetup
) -> None:
    client = RedisCluster.from_url(cluster.url, decode_responses=True)
    prefix = RedisBackend(cluster_setup.url or "").prefix
    backend = RedisBackend(client=client, prefix=prefix, strict_keys=True)
    await backend.open()
    try:
        arguments = {
            "queue": queuekit.Queue(backend),
            "backend": backend,
            "backend_setup": cluster_setup,
        }
        wanted = inspect.signature(conformance_test).parameters
        await conformance_test(**{name: arguments[name] for name in wanted})
    finally:
        await backend.close()
        await client.aclose()


async def test_a_cluster_refuses_a_parent_in_another_slot(cluster_setup: BackendSetup) -> None:
    backend = cluster_setup.make()
    await backend.open()
    queue = queuekit.Queue(backend)
    prefix = RedisBackend(cluster_setup.url or "").prefix
    home = "a"
    away = next(
        name
        for name in (f"q{n}" for n in range(100))
        if key_slot(f"{prefix}:{name}".encode()) != key_slot(f"{prefix}:{home}".encode())
    )
    try:
        parent = await queue.enqueue("t", queue=home)
        with pytest.raises(InvalidOptionError, match="on a Redis Cluster a job's parents"):
            await queue.enqueue("t", queue=away, after=[parent])
        with pytest.raises(InvalidOptionError, match="on a Redis Cluster"):
            await queue.enqueue_many(
                [
                    queuekit.new_job("t", queue=home),
                    queuekit.new_job("t", queue=away, after=[parent]),
                ]
            )
        assert [job.id for job in (await queue.list_jobs()).jobs] == [parent.id]
        child = await queue.enqueue("t", queue=home, after=[Parent(parent.id, OnFailure.RUN)])
        assert child.status == JobStatus.WAITING
    finally:
        await backend.close()

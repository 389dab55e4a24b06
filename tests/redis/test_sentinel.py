"""Redis through Sentinel: the `redis+sentinel://` URL, WAIT after enqueue, and a failover.

The failover test runs `queuekit worker --url redis+sentinel://...` against a private primary,
replica and three sentinels, SIGKILLs the primary mid-run, and checks that every enqueue
that was acknowledged (each one WAITed for the replica) completes, and that the worker goes
on with the promoted replica.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

import queuekit
from queuekit import BackendUnavailableError, InvalidURLError, JobStatus
from queuekit.backends.redis import RedisBackend
from queuekit.backends.redis.url import parse_url

from ..waiting import eventually
from .sentinel import MASTER_NAME, PASSWORD, SENTINEL_PASSWORD, SentinelGroup
from .server import new_prefix

QUEUEKIT = str(Path(sys.executable).parent / "queuekit")
ROOT = Path(__file__).resolve().parents[2]
WORKER_OPTIONS = [
    "--queues",
    "default=5",
    "--lease",
    "3",
    "--poll-interval",
    "0.1",
    "--processes",
    "1",
]
FAILOVER = 90.0
"""Seconds for a failover and the rescues after it (down-after 2 s, a 3 s lease, rescues
every 7.5-22.5 s), with room for a machine with every core busy."""


def test_a_sentinel_url_names_sentinels_primary_database_and_credentials() -> None:
    target = parse_url(
        "redis+sentinel://app:s%40cret@10.0.0.1:5000,sentinel-b,[::1]:5002/orders/3"
        "?sentinel_username=watcher&sentinel_password=pw&socket_timeout=2"
        "&queuekit_prefix=shop&queuekit_wait_replicas=1"
    )
    assert target.sentinels == (("10.0.0.1", 5000), ("sentinel-b", 26379), ("::1", 5002))
    assert target.master == "orders"
    assert target.connection == {
        "username": "app",
        "password": "s@cret",
        "db": 3,
        "socket_timeout": 2.0,
    }
    assert target.sentinel_connection == {
        "username": "watcher",
        "password": "pw",
        "socket_timeout": 2.0,
    }
    assert (target.prefix, target.wait_replicas, target.cluster) == ("shop", 1, False)

    plain = parse_url("redis+sentinel://127.0.0.1/mymaster")
    assert plain.connection == {} and plain.sentinel_connection == {}
    backend = RedisBackend.from_url("redis+sentinel://127.0.0.1:26379/mymaster?queuekit_prefix=p")
    assert backend.prefix == "p" and backend.wait_replicas == 0


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://127.0.0.1:26379",  # no primary named
        "redis+sentinel://127.0.0.1:26379/",
        "redis+sentinel://127.0.0.1:26379/mymaster/zero",
        "redis+sentinel://127.0.0.1:port/mymaster",
        "redis+sentinel://127.0.0.1,,127.0.0.2/mymaster",
        "redis+sentinel://127.0.0.1/mymaster?queuekit_cluster=true",
        "redis+sentinel://127.0.0.1/mymaster?queuekit_wait=1",
        "redis+sentinel://127.0.0.1/mymaster?queuekit_wait_replicas=-1",
        "redis+sentinel://127.0.0.1/mymaster?queuekit_wait_replicas=one",
        "redis://127.0.0.1/0?queuekit_cluster=true&queuekit_wait_replicas=1",
        "rediss+sentinel://127.0.0.1/mymaster",
    ],
)
def test_bad_sentinel_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidURLError):
        RedisBackend.from_url(url)


@pytest.fixture
def group(tmp_path: Path) -> Iterator[SentinelGroup]:
    sentinels = SentinelGroup(tmp_path)
    sentinels.start()
    try:
        yield sentinels
    finally:
        sentinels.stop()


async def _primary_with_replica(group: SentinelGroup) -> int:
    """Wait until the sentinels agree on a primary whose replica is in sync; its port."""
    ports: list[int] = []

    async def agreed() -> bool:
        port = await group.primary_port()
        ports[:] = [] if port is None else [port]
        return port is not None and await group.ready() and await group.replicas_in_sync(port)

    await eventually(agreed, "sentinels agree on a primary with a replica in sync")
    return ports[0]


@pytest.fixture
async def sentinel_url(group: SentinelGroup) -> str:
    await _primary_with_replica(group)
    return group.url(queuekit_prefix=new_prefix(), queuekit_wait_replicas="1")


async def test_an_acknowledged_enqueue_is_on_the_replica(
    group: SentinelGroup, sentinel_url: str
) -> None:
    """Through the URL, and through a client of the caller's own (`master_for`)."""
    primary = await _primary_with_replica(group)
    (replica,) = (port for port in group.servers if port != primary)
    raw = aioredis.Redis(port=replica, password=PASSWORD, decode_responses=True)
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        [("127.0.0.1", server.port) for server in group.sentinels],
        sentinel_kwargs={"password": SENTINEL_PASSWORD},
        password=PASSWORD,
    )
    client = sentinel.master_for(MASTER_NAME, decode_responses=True)
    backends = [
        RedisBackend.from_url(sentinel_url),
        RedisBackend(client=client, prefix=new_prefix(), wait_replicas=1),
    ]
    try:
        for backend in backends:
            async with queuekit.Queue(backend) as queue:
                for n in range(20):
                    job = await queue.enqueue("t", {"n": n})
                    # No wait: WAIT returned only once the replica had applied the enqueue.
                    key = backend._keys.job("default", job.id)
                    assert await raw.hget(key, "status") == "pending"
                # A blocking wait on the caller's client is woken by an enqueue too.
                waiting = asyncio.create_task(backend.wait_for_work(["other"], 60.0))
                await asyncio.sleep(0.2)
                await queue.enqueue("t", queue="other")
                await asyncio.wait_for(waiting, 30.0)
    finally:
        await raw.aclose()
        await client.aclose()
        await sentinel.aclose()


@pytest.mark.slow
async def test_a_worker_carries_on_through_a_failover_and_loses_no_acknowledged_job(
    group: SentinelGroup, sentinel_url: str, tmp_path: Path
) -> None:
    old_primary = await _primary_with_replica(group)
    acknowledged: dict[str, int] = {}
    refused: list[str] = []
    promoted = asyncio.Event()
    after_promotion: list[str] = []
    stop = asyncio.Event()

    async def produce(queue: queuekit.Queue) -> None:
        n = 0
        while not stop.is_set():
            try:
                job = await queue.enqueue("double", {"n": n})
            except BackendUnavailableError as exc:
                refused.append(str(exc))
                await asyncio.sleep(0.05)
                continue
            acknowledged[job.id] = n
            if promoted.is_set():
                after_promotion.append(job.id)
            n += 1
            await asyncio.sleep(0.005)

    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [
            QUEUEKIT,
            "worker",
            "tests.redis.sentinel_tasks:tasks",
            "--url",
            sentinel_url,
            *WORKER_OPTIONS,
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        async with queuekit.connect(sentinel_url) as queue:
            producer = asyncio.create_task(produce(queue))
            try:

                async def completed_at_least(least: int) -> bool:
                    return (await queue.stats("default")).completed >= least

                await eventually(lambda: completed_at_least(50), "the worker is mid-run")
                group.kill(old_primary)

                new_primary: list[int] = []

                async def promoted_elsewhere() -> bool:
                    port = await group.primary_port()
                    new_primary[:] = [port] if port not in (None, old_primary) else []
                    return bool(new_primary)

                await eventually(
                    promoted_elsewhere, "the sentinels promote the replica", timeout=FAILOVER
                )

                async def refused_for_want_of_replicas() -> bool:
                    """(A connection left over to the dead primary fails differently, once.)"""
                    try:
                        await queue.enqueue("double", {"n": -1})
                    except BackendUnavailableError as exc:
                        return "replicas acknowledged" in str(exc)
                    pytest.fail("an enqueue was acknowledged without a replica")

                # With no replica left, WAIT cannot be satisfied: enqueues are refused, saying
                # that the primary has the job but could lose it.
                await eventually(refused_for_want_of_replicas, "an enqueue refused for WAIT")
                group.restart_as_replica(old_primary, new_primary[0])
                promoted.set()
                await eventually(
                    lambda: len(after_promotion) >= 50,
                    "enqueues are acknowledged again once the old primary is a replica",
                    timeout=FAILOVER,
                )
            finally:
                stop.set()
                await producer

            async def all_done() -> bool:
                jobs = [await queue.get_job(job_id) for job_id in acknowledged]
                return all(job is not None and job.status == JobStatus.COMPLETED for job in jobs)

            await eventually(all_done, "every acknowledged job completed", timeout=FAILOVER)
            for job_id, n in acknowledged.items():
                job = await queue.get_job(job_id)
                assert job is not None and job.result == 2 * n, job
            assert worker.poll() is None, "the worker carried on"
    finally:
        if worker.poll() is None:
            os.kill(worker.pid, signal.SIGTERM)
            worker.wait(timeout=60)
        log.close()
        # Shown by pytest only when the test fails.
        print("worker log:", (tmp_path / "worker.log").read_text()[-20_000:])
        print(f"{len(acknowledged)} enqueues acknowledged, {len(refused)} refused: {refused[-5:]}")
    assert worker.returncode == 0

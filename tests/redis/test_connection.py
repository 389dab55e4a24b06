"""Connecting: URLs and prefixes, a server that is down or goes away, clients users bring."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import redis.exceptions

import queuekit
from benchmarks.system import free_ports
from queuekit import BackendUnavailableError, InvalidNameError, InvalidURLError, JobStatus
from queuekit.backends.redis import RedisBackend
from queuekit.backends.redis.packing import HiredisPacking

from ..setups import BackendSetup, with_url_options
from .server import RedisServer, redis_store, require_redis_url


@pytest.mark.parametrize(
    "prefix", ["", "has-dash", "1digit", "with space", "{tag}", "a:b", "x" * 64, "ünï", "a*"]
)
def test_unsafe_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(InvalidNameError):
        RedisBackend(with_url_options("redis://localhost:6379/0", queuekit_prefix=prefix))
    with pytest.raises(InvalidNameError):
        RedisBackend("redis://localhost:6379/0", prefix=prefix or " ")


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost:port/0",
        "redis://localhost:6379/db",
        "redis://localhost:6379/0?queuekit_colour=blue",
        "redis://localhost:6379/0?queuekit_cluster=maybe",
        "http://localhost:6379/0",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidURLError):
        RedisBackend(url)


def test_connect_knows_both_schemes() -> None:
    for scheme in ("redis", "rediss"):
        queue = queuekit.connect(f"{scheme}://localhost:6379/0?queuekit_prefix=p")
        assert isinstance(queue.backend, RedisBackend) and queue.backend.prefix == "p"


async def test_server_down_is_backend_unavailable() -> None:
    (port,) = free_ports(1)
    backend = RedisBackend(f"redis://127.0.0.1:{port}/0")
    with pytest.raises(BackendUnavailableError):
        await backend.open()
    with pytest.raises(BackendUnavailableError):
        async with queuekit.connect(f"redis://127.0.0.1:{port}/0"):
            pass


async def test_the_url_reaches_the_same_store(store: BackendSetup) -> None:
    """The URL (prefix included) is how another process finds the same jobs."""
    assert store.url is not None
    async with queuekit.connect(store.url) as producer, queuekit.connect(store.url) as other:
        job = await producer.enqueue("t", {"x": 1})
        assert (await other.get_job(job.id)).payload == {"x": 1}
    async with redis_store() as elsewhere:  # another prefix, deleted afterwards
        assert elsewhere.url is not None
        async with queuekit.connect(elsewhere.url) as q:
            assert await q.backend.get_job(job.id) is None


async def test_a_client_without_decoding_works(store: BackendSetup) -> None:
    client = aioredis.Redis.from_url(require_redis_url())  # decode_responses=False: bytes
    assert store.url is not None
    prefix = RedisBackend(store.url).prefix
    backend = RedisBackend(client=client, prefix=prefix, strict_keys=True)
    try:
        async with queuekit.Queue(backend) as queue:
            job = await queue.enqueue("t", {"ü": [1]}, unique_key="k")
            assert (await queue.enqueue("t", unique_key="k")).id == job.id
            (running,) = await backend.claim({"default": 1}, limit=1, lease=30, worker_id="w")
            assert running.payload == {"ü": [1]}
            assert await backend.complete(running.attempt, '"done"')
            assert await queue.result(job.id, timeout=1) == "done"
            assert await queue.list_queues() == ["default"]
        assert await client.ping()  # the backend leaves a client it was given open
    finally:
        await client.aclose()


async def test_a_server_that_goes_away_and_comes_back(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    server = RedisServer(tmp_path, port, "--appendonly", "yes", "--appendfsync", "always")
    server.start()
    try:
        async with queuekit.connect(server.url) as queue:
            job = await queue.enqueue("t")
            server.kill()
            for call in (
                queue.enqueue("t"),
                queue.get_job(job.id),
                queue.stats(),
                queue.backend.claim({"default": 1}, limit=1, lease=1, worker_id="w"),
                queue.backend.wait_for_work(["default"], 0.1),
            ):
                with pytest.raises(BackendUnavailableError):
                    await call
            server.start()
            # Reconnects by itself; the scripts are reloaded (a restart empties their cache).
            (claimed,) = await queue.backend.claim({"default": 1}, limit=1, lease=1, worker_id="w")
            assert claimed.id == job.id
            assert await queue.backend.complete(claimed.attempt)
            assert (await queue.get_job(job.id)).status == JobStatus.COMPLETED
    finally:
        server.stop()


@pytest.mark.parametrize(("policy", "warns"), [("allkeys-lru", True), ("noeviction", False)])
async def test_eviction_policy_is_checked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, policy: str, warns: bool
) -> None:
    (port,) = free_ports(1)
    server = RedisServer(tmp_path, port, "--maxmemory-policy", policy)
    server.start()
    try:
        with caplog.at_level(logging.WARNING, logger="queuekit.backends.redis"):
            async with queuekit.connect(server.url):
                pass
        warned = any("maxmemory-policy" in record.message for record in caplog.records)
        assert warned == warns
    finally:
        server.stop()


async def test_a_refused_config_get_is_skipped(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    server = RedisServer(tmp_path, port, "--rename-command", "CONFIG", '""')
    server.start()
    try:
        async with queuekit.connect(server.url) as queue:
            await queue.enqueue("t")
    finally:
        server.stop()


async def test_the_clients_it_makes_pack_commands_in_c(redis_backend: RedisBackend) -> None:
    """The clients a URL makes pack with hiredis, byte for byte as redis-py does, a command
    of several words included; what neither can send is still redis-py's DataError."""
    clients = redis_backend._calls.opened()
    made = [clients.client, clients.blocking]
    for client in made:
        assert isinstance(client, aioredis.Redis)
        assert issubclass(client.connection_pool.connection_class, HiredisPacking)
    client = made[0]
    assert isinstance(client, aioredis.Redis)
    # A command name of two words, through the packing connection, to the server.
    assert "maxmemory" in await client.config_get("maxmemory")
    packed = client.connection_pool.connection_class()
    plain = aioredis.Connection()
    for args in (
        ("EVALSHA", "f" * 40, 2, "{q:default}:ready", "{q:default}:all", "ünï", b"\x00\xff", 7),
        ("SET", "k", 0.1, 1e-7, -2.5, 2**63, memoryview(b"ab")),
        ("CONFIG GET", "maxmemory"),
        (b"CLIENT SETNAME", "queuekit"),
    ):
        assert packed.pack_command(*args) == [b"".join(plain.pack_command(*args))]
    bad: list[Any] = [None, True]
    for value in bad:
        with pytest.raises(redis.exceptions.DataError):
            packed.pack_command("SET", "k", value)

"""Redis servers for the tests: the shared one, and private `redis-server` processes."""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import redis.asyncio as aioredis

from benchmarks.system import free_ports
from queuekit.backends.redis import RedisBackend

from ..setups import (
    REDIS_URL_VARIABLE,
    BackendSetup,
    private_servers,
    skip_for_missing,
    with_url_options,
)


def redis_url() -> str | None:
    """$QUEUEKIT_TEST_REDIS_URL, else a private redis-server started once for the run."""
    return os.environ.get(REDIS_URL_VARIABLE) or _private_redis_url()


@functools.cache
def _private_redis_url() -> str | None:
    """Start this run's private redis-server, the first time it is asked for (None without one)."""
    if shutil.which("redis-server") is None:
        return None
    return private_servers.enter_context(private_redis())


def require_redis_url() -> str:
    url = redis_url()
    if url is None:
        skip_for_missing("redis-server")
    return url


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """A redis-server on a free loopback port with its files in a temp dir; yields its URL."""
    directory = Path(tempfile.mkdtemp(prefix="queuekit-redis-"))
    (port,) = free_ports(1)
    server = RedisServer(directory, port)
    try:
        with running(server):
            yield server.url
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def require_programs(*programs: str) -> list[str]:
    """The paths of these programs; the test skips (under CI=true fails) when one is missing."""
    paths = [shutil.which(program) for program in programs]
    found = [path for path in paths if path is not None]
    if len(found) < len(programs):
        skip_for_missing("/".join(programs))
    return found


def new_prefix() -> str:
    return f"t_{secrets.token_hex(6)}"


@asynccontextmanager
async def redis_store(prefix: str | None = None) -> AsyncIterator[BackendSetup]:
    """A random key prefix on the test server; its keys are deleted afterwards.

    Clients run the scripts with the strict prelude, which fails any script that touches a
    key it was not given in KEYS. Their connections are named after the prefix, so a test
    finds its own in `CLIENT LIST` among those of the tests running beside it.
    """
    base = require_redis_url()
    prefix = prefix or new_prefix()
    url = with_url_options(base, queuekit_prefix=prefix, client_name=prefix)
    try:
        yield BackendSetup("redis", url, lambda: RedisBackend(url, strict_keys=True))
    finally:
        await delete_prefix(base, prefix)


async def subscribers(raw: aioredis.Redis, backend: RedisBackend) -> dict[str, int]:
    """`backend`'s connections subscribed to sharded channels (named after its prefix by
    `redis_store`): their ids, each to how many channels it subscribes."""
    clients = await raw.client_list(_type="pubsub")
    ours = (c for c in clients if c["name"] == backend._keys.prefix)
    return {c["id"]: int(c["ssub"]) for c in ours if int(c.get("ssub", 0))}


async def delete_prefix(url: str, prefix: str) -> None:
    """Delete every key of one prefix: `{prefix}:...`, `{prefix:<queue>}:...` and the id
    index's shards `{prefix#<n>}:index`."""
    client = aioredis.Redis.from_url(url)
    try:
        async for batch in _scan_batches(client, "{" + prefix + "[:}#]*"):
            await client.delete(*batch)
    finally:
        await client.aclose()


async def _scan_batches(client: aioredis.Redis, pattern: str) -> AsyncIterator[list[bytes]]:
    batch: list[bytes] = []
    async for key in client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) == 500:
            yield batch
            batch = []
    if batch:
        yield batch


class RedisServer:
    """A private `redis-server` on a loopback port, with its data in `directory`."""

    def __init__(self, directory: Path, port: int, *options: str) -> None:
        self.directory = directory
        self.port = port
        self.options = options
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        (binary,) = require_programs("redis-server")
        command = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(self.directory / "redis.log"),
            *self.options,
        ]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        try:
            self.wait_until_ready()
        except BaseException:
            self.kill()
            raise

    def wait_until_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server exited: {log[-2000:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn,
            ):
                conn.sendall(b"PING\r\n")
                if conn.recv(64).startswith(b"+PONG"):
                    return
            time.sleep(0.02)
        raise TimeoutError(f"redis-server on port {self.port} did not start")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final save; what is on disk is what survives."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None


@contextlib.contextmanager
def running(*servers: RedisServer) -> Iterator[None]:
    try:
        for server in servers:
            server.start()
        yield
    finally:
        for server in servers:
            server.stop()


class LocalCluster:
    """A Redis Cluster of `size` primaries, each with `replicas` replicas, on loopback ports.

    `node_timeout` (ms): how long a node may not answer before the others count it as down
    (with replicas, its replica then takes over).
    """

    def __init__(
        self, directory: Path, size: int = 3, *, replicas: int = 0, node_timeout: int = 5000
    ) -> None:
        self.replicas = replicas
        self.servers = [
            RedisServer(
                directory / str(port),
                port,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                str(node_timeout),
                # A replica's first sync at once, not after the default 5 s wait for others.
                "--repl-diskless-sync-delay",
                "0",
            )
            for port in free_ports(size * (1 + replicas))
        ]

    @property
    def url(self) -> str:
        return self.servers[0].url

    def start(self) -> None:
        _, cli = require_programs("redis-server", "redis-cli")
        try:
            for server in self.servers:
                server.start()
            addresses = [f"127.0.0.1:{server.port}" for server in self.servers]
            options = ["--cluster-replicas", str(self.replicas), "--cluster-yes"]
            subprocess.run(
                [cli, "--cluster", "create", *addresses, *options],
                check=True,
                capture_output=True,
                timeout=30,
            )
            self._wait_until_ok(cli)
        except BaseException:
            self.stop()
            raise

    def _wait_until_ok(self, cli: str, timeout: float = 20.0) -> None:
        """Until every node sees the cluster up, and every replica is linked to its primary."""
        replicas = len(self.servers) // (1 + self.replicas) * self.replicas
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = [
                subprocess.run(
                    [cli, "-p", str(server.port), *command],
                    capture_output=True,
                    text=True,
                    timeout=5,
                ).stdout
                for server in self.servers
                for command in (["cluster", "info"], ["info", "replication"])
            ]
            ok = sum("cluster_state:ok" in state for state in states)
            linked = sum("master_link_status:up" in state for state in states)
            if ok == len(self.servers) and linked == replicas:
                return
            time.sleep(0.1)
        raise TimeoutError("the Redis Cluster did not become ready")

    def server(self, port: int) -> RedisServer:
        """The node listening on `port`."""
        (server,) = (server for server in self.servers if server.port == port)
        return server

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

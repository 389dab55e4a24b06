"""A private Sentinel setup: a primary, a replica and three sentinels on loopback ports.

Every server and sentinel has a password (a different one for the sentinels), so the URL's
credentials for both are exercised. Each process is stopped by PID.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from pathlib import Path

import redis.asyncio as aioredis

from benchmarks.system import free_ports

from .server import RedisServer, require_programs

MASTER_NAME = "queuekit"
PASSWORD = "server-secret"
SENTINEL_PASSWORD = "sentinel-secret"
DOWN_AFTER_MS = 2000
"""How long the primary must not answer before a sentinel counts it as down."""


class GuardedServer(RedisServer):
    """A `redis-server` that asks for PASSWORD, and gives it to its primary when a replica."""

    password = PASSWORD

    def __init__(self, directory: Path, port: int, *options: str) -> None:
        super().__init__(
            directory,
            port,
            *("--requirepass", PASSWORD, "--masterauth", PASSWORD),
            *("--repl-diskless-sync-delay", "0"),  # a replica syncs at once, not after 5 s
            *options,
        )

    def wait_until_ready(self, timeout: float = 10.0) -> None:
        _wait_for_pong(self, self.password, timeout)


class SentinelServer(RedisServer):
    """`redis-server <config> --sentinel` watching the primary at `primary_port`."""

    password = SENTINEL_PASSWORD

    def __init__(self, directory: Path, port: int, primary_port: int) -> None:
        super().__init__(directory, port)
        self.primary_port = primary_port

    def start(self) -> None:
        (binary,) = require_programs("redis-server")
        config = self.directory / "sentinel.conf"  # sentinels rewrite it: a file of its own
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.directory}\n"
            f"logfile {self.directory / 'redis.log'}\n"
            f"requirepass {SENTINEL_PASSWORD}\nsentinel sentinel-pass {SENTINEL_PASSWORD}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.primary_port} 2\n"
            f"sentinel auth-pass {MASTER_NAME} {PASSWORD}\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER_NAME} 10000\n"
        )
        self.process = subprocess.Popen(
            [binary, str(config), "--sentinel"], stdin=subprocess.DEVNULL
        )
        _wait_for_pong(self, self.password, 10.0)


def _wait_for_pong(server: RedisServer, password: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.process is not None
        if server.process.poll() is not None:
            log = (server.directory / "redis.log").read_text(errors="replace")
            raise RuntimeError(f"redis-server exited: {log[-2000:]}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", server.port), timeout=0.2) as conn,
        ):
            conn.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            replies = b""
            while len(replies) < 12:  # "+OK\r\n+PONG\r\n"
                replies += conn.recv(64) or b"-"
                if replies.startswith(b"-") or replies == b"+OK\r\n+PONG\r\n":
                    break
            if replies == b"+OK\r\n+PONG\r\n":
                return
        time.sleep(0.02)
    raise TimeoutError(f"redis-server on port {server.port} did not start")


class SentinelGroup:
    """A primary, one replica and three sentinels (quorum 2), with files under `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        primary_port, replica_port, *sentinel_ports = free_ports(5)
        self.servers = {
            primary_port: GuardedServer(directory / "primary", primary_port),
            replica_port: GuardedServer(
                directory / "replica", replica_port, "--replicaof", "127.0.0.1", str(primary_port)
            ),
        }
        self.sentinels = [
            SentinelServer(directory / f"sentinel-{port}", port, primary_port)
            for port in sentinel_ports
        ]

    def url(self, **options: str) -> str:
        """A `redis+sentinel://` URL with both passwords and these query options."""
        hosts = ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)
        query = "&".join(
            f"{name}={value}"
            for name, value in {"sentinel_password": SENTINEL_PASSWORD, **options}.items()
        )
        return f"redis+sentinel://:{PASSWORD}@{hosts}/{MASTER_NAME}/0?{query}"

    def start(self) -> None:
        try:
            for server in self.servers.values():
                server.start()
            for sentinel in self.sentinels:
                sentinel.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for server in [*self.sentinels, *self.servers.values()]:
            server.stop()

    def kill(self, port: int) -> None:
        """SIGKILL the server on `port`: it loses everything (no persistence)."""
        self.servers[port].kill()

    def restart_as_replica(self, port: int, primary_port: int) -> None:
        """Start the server on `port` again, empty, as a replica of `primary_port`."""
        server = GuardedServer(
            self.servers[port].directory, port, "--replicaof", "127.0.0.1", str(primary_port)
        )
        self.servers[port] = server
        server.start()

    async def sentinel_views(self) -> list[dict[str, object]]:
        """What each sentinel that answers says of the primary (SENTINEL MASTER)."""
        views = []
        for sentinel in self.sentinels:
            client = aioredis.Redis(
                port=sentinel.port, password=SENTINEL_PASSWORD, decode_responses=True
            )
            try:
                view = await client.sentinel_master(MASTER_NAME)
                assert isinstance(view, dict)
                views.append(view)
            finally:
                await client.aclose()
        return views

    async def primary_port(self) -> int | None:
        """The primary's port if every sentinel names the same one, else None."""
        ports = {int(str(view["port"])) for view in await self.sentinel_views()}
        return ports.pop() if len(ports) == 1 else None

    async def ready(self) -> bool:
        """Every sentinel sees the other two and the replica (so a failover can happen)."""
        views = await self.sentinel_views()
        return all(
            int(str(view["num-other-sentinels"])) == 2 and int(str(view["num-slaves"])) >= 1
            for view in views
        )

    async def replicas_in_sync(self, primary_port: int) -> bool:
        """The primary has a replica whose link is up."""
        client = aioredis.Redis(port=primary_port, password=PASSWORD, decode_responses=True)
        try:
            info = await client.info("replication")
        finally:
            await client.aclose()
        return int(info.get("connected_slaves", 0)) >= 1 and "online" in str(info.get("slave0"))

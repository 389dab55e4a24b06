"""The chaos run's private servers: a PostgreSQL cluster and a Redis with an AOF, each on a spare
loopback port, that the run can crash and start again (SQLite needs none)."""

from __future__ import annotations

import contextlib
import functools
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.postgres.cluster import running_cluster


@dataclass
class Store:
    url: str
    restart: Callable[[], None] | None
    """Stop the server abruptly and start it again (None: no server, as with SQLite)."""
    stop: Callable[[], None] | None = None
    """Stop the server abruptly; `start` brings it back."""
    start: Callable[[], None] | None = None


def spare_port() -> int:
    from benchmarks.system import free_ports

    return free_ports(1)[0]


@contextlib.contextmanager
def private_postgres(directory: Path) -> Iterator[Store]:
    """A private cluster (initdb) on a spare loopback port; restart is `pg_ctl stop -m immediate`
    then start: a crash, recovered from the WAL. Commits are synchronous (as in production), so
    an acknowledged enqueue survives; fsync is off, which a process crash does not need."""
    settings = "-c fsync=off -c full_page_writes=off -c max_connections=200"
    with running_cluster(settings) as cluster:
        yield Store(
            cluster.dsn,
            functools.partial(cluster.restart, "immediate"),
            functools.partial(cluster.stop, "immediate"),
            cluster.start,
        )


@contextlib.contextmanager
def private_redis(directory: Path) -> Iterator[Store]:
    """`redis-server --appendonly yes --appendfsync always` on a spare port; restart is SIGKILL
    then start: what survives is what the AOF had, which is every acknowledged write."""
    from tests.redis.server import RedisServer

    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server not found")
    server = RedisServer(
        Path(tempfile.mkdtemp(prefix="queuekit-chaos-redis-", dir=directory)),
        spare_port(),
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
    )

    def restart() -> None:
        server.kill()
        server.start()

    server.start()
    try:
        yield Store(server.url, restart, server.kill, server.start)
    finally:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)


@contextlib.contextmanager
def store_for(backend: str, directory: Path) -> Iterator[Store]:
    if backend == "sqlite":
        yield Store(f"sqlite:///{directory / 'chaos.db'}", None)
    elif backend == "postgres":
        with private_postgres(directory) as store:
            yield store
    elif backend == "redis":
        with private_redis(directory) as store:
            yield store
    else:
        raise ValueError(f"unknown backend {backend!r}")

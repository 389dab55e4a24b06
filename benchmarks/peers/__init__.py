"""The rows of the benchmark: each library on each server, and the venv it is installed in."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from .base import Peer, Servers


@dataclass(frozen=True, slots=True)
class Row:
    """One library on one server, as the results table shows it."""

    key: str
    library: str
    server: str
    """memory, sqlite, postgres or redis."""
    venv: str
    """The requirements file under benchmarks/requirements/ that installs the library."""
    peer: str
    """`module:class` of its `Peer`."""
    reference: bool = False
    """A physical reference (a bare claim loop), not a queue library."""
    single_process: bool = False
    """The jobs live in a process's memory, so the worker process enqueues its own."""
    setting: str = ""
    """What sets this row apart from another of the same library and server, for its label."""

    def load(self, servers: Servers) -> Peer:
        module, _, name = self.peer.partition(":")
        peer_class: type[Peer] = getattr(importlib.import_module(module), name)
        return peer_class(servers)


ROWS = [
    Row(
        "queuekit-memory",
        "queuekit",
        "memory",
        "queuekit",
        "benchmarks.peers.queuekit:Memory",
        single_process=True,
    ),
    Row("queuekit-sqlite", "queuekit", "sqlite", "queuekit", "benchmarks.peers.queuekit:SQLite"),
    Row(
        "queuekit-sqlite-normal",
        "queuekit",
        "sqlite",
        "queuekit",
        "benchmarks.peers.queuekit:SQLiteNormal",
        setting="synchronous=normal",
    ),
    Row(
        "queuekit-postgres",
        "queuekit",
        "postgres",
        "queuekit",
        "benchmarks.peers.queuekit:Postgres",
    ),
    Row("queuekit-redis", "queuekit", "redis", "queuekit", "benchmarks.peers.queuekit:Redis"),
    Row("saq-postgres", "saq", "postgres", "saq", "benchmarks.peers.saq:SaqPostgres"),
    Row("pgqueuer", "pgqueuer", "postgres", "pgqueuer", "benchmarks.peers.pgqueuer:PgQueuer"),
    Row(
        "procrastinate",
        "procrastinate",
        "postgres",
        "procrastinate",
        "benchmarks.peers.procrastinate:Procrastinate",
    ),
    Row("chancy", "chancy", "postgres", "chancy", "benchmarks.peers.chancy:Chancy"),
    Row("oban", "oban", "postgres", "oban", "benchmarks.peers.oban:Oban"),
    Row("arq", "arq", "redis", "arq", "benchmarks.peers.arq:Arq"),
    Row("saq-redis", "saq", "redis", "saq", "benchmarks.peers.saq:SaqRedis"),
    Row("streaq", "streaq", "redis", "streaq", "benchmarks.peers.streaq:Streaq"),
    Row("taskiq", "taskiq", "redis", "taskiq", "benchmarks.peers.taskiq:Taskiq"),
    Row("celery", "celery", "redis", "celery", "benchmarks.peers.celery:Celery"),
    Row("dramatiq", "dramatiq", "redis", "dramatiq", "benchmarks.peers.dramatiq:Dramatiq"),
    Row(
        "asyncpg-single",
        "asyncpg SKIP LOCKED, 1 per claim",
        "postgres",
        "queuekit",
        "benchmarks.peers.raw_postgres:SingleClaims",
        reference=True,
    ),
    Row(
        "asyncpg-batched",
        "asyncpg SKIP LOCKED, batched",
        "postgres",
        "queuekit",
        "benchmarks.peers.raw_postgres:BatchedClaims",
        reference=True,
    ),
]
ROWS_BY_KEY = {row.key: row for row in ROWS}

__all__ = ["ROWS", "ROWS_BY_KEY", "Peer", "Row", "Servers"]

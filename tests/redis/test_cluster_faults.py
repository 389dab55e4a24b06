"""Faults on a real Redis Cluster while a worker drains queues on several nodes.

A `queuekit worker` process (tasks in cluster_tasks.py, which log each run's start and end)
drains queues spread over three primaries while the test keeps enqueuing. One test SIGKILLs a
primary and waits for the cluster to promote its replica; the other moves a queue's slot to
another primary. Both check that the same worker process carries on, that every acknowledged
enqueue is completed, and that no job ran twice at once (nor twice at all, but after a fault).

The backend cannot `WAIT` on a Cluster (`queuekit_wait_replicas` is refused there), so in the
failover test an enqueue counts as acknowledged once the test's own `WAIT` says the replicas
have it: the producer's client keeps one connection per node, and after each enqueue it asks
every primary, on that connection, to `WAIT` for its replica. Jobs a failover loses before they
reach the replica are the documented loss (docs/redis.md, *What can be lost*).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import anyio
import pytest
from redis import exceptions as rx
from redis.asyncio import Redis, RedisCluster
from redis.crc import key_slot

import queuekit
from queuekit import BackendUnavailableError, JobStatus
from queuekit.backends.redis import RedisBackend

from ..waiting import eventually
from .cluster_tasks import RUN_LOG
from .invariants import check_queue
from .server import LocalCluster, new_prefix

# Without redis-server and redis-cli, LocalCluster.start skips, and fails under CI=true.
pytestmark = pytest.mark.slow

QUEUEKIT = str(Path(sys.executable).parent / "queuekit")
ROOT = Path(__file__).resolve().parents[2]
QUEUES = [f"q{n}" for n in range(6)]
LEASE = 5.0
"""Seconds: longer than a failover (node timeout 1.5 s, then the election), so that most jobs
running through one keep their leases; those that lose it run again."""
MOVE_SECONDS = 1.5
"""The least time a slot takes to move (see `move_slot`)."""
WAIT_MS = 1000
"""How long the producer's WAIT gives a replica to acknowledge an enqueue."""


@dataclass
class Producer:
    """Enqueues `double` jobs round-robin over QUEUES until stopped; records what was acknowledged.

    With `wait`, an enqueue counts only once every primary's replica has it (`WAIT`), or as
    many replicas as `replicas` says for that primary (by port).
    """

    queue: queuekit.Queue
    client: RedisCluster
    wait: bool
    replicas: dict[int, int] = field(default_factory=dict)
    acknowledged: dict[str, int] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            try:
                job = await self.queue.enqueue("double", {"n": n}, queue=QUEUES[n % len(QUEUES)])
                await self._replicated()
            except (BackendUnavailableError, rx.RedisError) as exc:
                self.refused.append(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(0.02)
            else:
                self.acknowledged[job.id] = n
            n += 1
            await asyncio.sleep(0.005)

    async def _replicated(self) -> None:
        """WAIT on each primary, on the connection the enqueue used (one per node)."""
        if not self.wait:
            return
        for node in self.client.get_primaries():
            wanted = self.replicas.get(int(node.port), 1)
            got = await self.client.execute_command("WAIT", wanted, WAIT_MS, target_nodes=node)
            if int(got) < wanted:
                raise BackendUnavailableError(f"{node.name}: {got} of {wanted} replicas have it")


@dataclass(frozen=True)
class Run:
    job_id: str
    token: str
    pid: int
    started: float
    ended: float | None


def read_runs(path: Path) -> dict[str, list[Run]]:
    """Each job's runs (one per lease token) from the tasks' log, in start order."""
    starts: dict[tuple[str, str], tuple[int, float]] = {}
    ends: dict[tuple[str, str], float] = {}
    for line in path.read_text().splitlines():
        event, job_id, _, token, pid, at = line.split()
        if event == "start":
            starts[job_id, token] = (int(pid), float(at))
        else:
            ends[job_id, token] = float(at)
    runs: dict[str, list[Run]] = defaultdict(list)
    for (job_id, token), (worker, started) in sorted(starts.items(), key=lambda item: item[1][1]):
        runs[job_id].append(Run(job_id, token, worker, started, ends.get((job_id, token))))
    return runs


def check_runs(runs: dict[str, list[Run]], acknowledged: dict[str, int], fault: float) -> None:
    """Every acknowledged job ran to its end; runs of one job never overlap, and a second run
    starts only after the fault (a run cut off by it, or whose claim it lost)."""
    missing = [job_id for job_id in acknowledged if job_id not in runs]
    assert not missing, f"{len(missing)} acknowledged jobs never ran: {missing[:5]}"
    for job_id, job_runs in runs.items():
        assert all(run.ended is not None for run in job_runs), job_runs
        for first, second in itertools.pairwise(job_runs):
            assert first.ended is not None and first.ended <= second.started, (
                f"two runs of {job_id} at once: {job_runs}"
            )
            assert second.started > fault, f"{job_id} ran twice before the fault: {job_runs}"
    assert len({run.pid for job_runs in runs.values() for run in job_runs}) == 1, "one worker"


class WorkerProcess:
    """`queuekit worker` on every queue of QUEUES, logging its runs to `run_log`."""

    def __init__(self, url: str, run_log: Path, output: Path) -> None:
        self.output = output.open("w")
        queues = ",".join(f"{name}=4" for name in QUEUES)
        self.process = subprocess.Popen(
            [
                QUEUEKIT,
                "worker",
                "tests.redis.cluster_tasks:tasks",
                "--url",
                url,
                "--queues",
                queues,
                "--concurrency",
                "12",
                "--lease",
                str(LEASE),
                "--poll-interval",
                "0.1",
                "--processes",
                "1",
            ],
            cwd=ROOT,
            env={**os.environ, RUN_LOG: str(run_log)},
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> int:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=60)
        self.output.close()
        return self.process.returncode


@contextlib.contextmanager
def cluster_and_worker(tmp_path: Path, replicas: int) -> Iterator[tuple[LocalCluster, str, Path]]:
    """A started cluster with `replicas` per primary, a random prefix on it, and a worker on
    that prefix logging its runs to the path given."""
    # 1.5 s: a fast failover, yet no busy node (a CPU hog on both cores) goes silent that long.
    cluster = LocalCluster(tmp_path / "cluster", replicas=replicas, node_timeout=1500)
    cluster.start()
    note("cluster up")
    try:
        prefix = new_prefix()
        run_log = tmp_path / "runs.log"
        url = url_of(cluster.servers[0].port, prefix)
        worker = WorkerProcess(url, run_log, tmp_path / "worker.log")
        try:
            yield cluster, prefix, run_log
            assert worker.process.poll() is None, "the worker carried on"
        finally:
            code = worker.stop()
            # Shown by pytest only when the test fails.
            print("worker log:", (tmp_path / "worker.log").read_text()[-20_000:])
    finally:
        cluster.stop()
    assert code == 0, "the worker shut down cleanly"


def url_of(port: int, prefix: str) -> str:
    """The URL of `prefix` on the cluster, through the node on `port`."""
    return f"redis://127.0.0.1:{port}/0?queuekit_cluster=true&queuekit_prefix={prefix}"


@contextlib.asynccontextmanager
async def producing(port: int, prefix: str, *, wait: bool) -> AsyncIterator[Producer]:
    """A producer running beside the block, on a client of its own; stopped when the block
    ends. With `wait`, the client has one connection per node, so that its WAITs follow its
    writes; without, the usual pool, as the queue's background writes (events, activity) need
    connections of their own beside the enqueues."""
    connections = 1 if wait else 2**31  # else redis-py's default
    client = RedisCluster(
        host="127.0.0.1", port=port, decode_responses=True, max_connections=connections
    )
    backend = RedisBackend(client=client, prefix=prefix)
    try:
        await backend.open()
        producer = Producer(queuekit.Queue(backend), client, wait)
        task = asyncio.create_task(producer.run())
        try:
            yield producer
        finally:
            producer.stop.set()
            await task
    finally:
        await backend.close()
        await client.aclose()
    note(f"{len(producer.refused)} enqueues refused: {producer.refused[-5:]}")


def runs_ended(run_log: Path, least: int) -> bool:
    return run_log.exists() and run_log.read_text().count("\nend ") >= least


def note(what: str) -> None:
    """Print when something happened (pytest shows it when the test fails)."""
    print(f"{time.time():.3f} {what}")


async def check_completed(url: str, acknowledged: dict[str, int]) -> None:
    """Wait until every acknowledged job is completed, with its result.

    The test rescues jobs whose lease expired, as a worker's rescuer does every 15 s, only
    more often: a fault that cut a claim's reply leaves its jobs running until their lease
    runs out (they then run again, which `check_runs` allows after a fault).
    """
    note(f"producer stopped, {len(acknowledged)} enqueues acknowledged")
    left = dict(acknowledged)
    async with queuekit.connect(url) as queue:

        async def all_completed() -> bool:
            await queue.backend.rescue()
            ids = list(left)
            for start in range(0, len(ids), 50):  # (a node's pool holds 100 connections)
                chunk = ids[start : start + 50]
                for job in await asyncio.gather(*(queue.get_job(job_id) for job_id in chunk)):
                    if job is not None and job.status == JobStatus.COMPLETED:
                        assert job.result == 2 * left.pop(job.id), job
            return not left

        await eventually(all_completed, "every acknowledged job completed")
    note("every acknowledged job completed")


def queue_slots(prefix: str) -> dict[str, int]:
    return {name: key_slot(f"{{{prefix}:{name}}}".encode()) for name in QUEUES}


@dataclass(frozen=True)
class Node:
    """One line of CLUSTER NODES."""

    id: str
    port: int
    flags: str
    primary_id: str
    slots: list[list[str]]


async def cluster_nodes(port: int) -> list[Node]:
    """CLUSTER NODES as the node on `port` sees it."""
    async with Redis(port=port, decode_responses=True) as node:
        reply = await node.cluster("NODES")
    return [
        Node(n["node_id"], int(address.rsplit(":", 1)[1]), n["flags"], n["master_id"], n["slots"])
        for address, n in reply.items()
    ]


def owner_of(nodes: list[Node], slot: int) -> Node:
    """The primary serving `slot`."""
    for node in nodes:
        if any(int(span[0]) <= slot <= int(span[-1]) for span in node.slots):
            return node
    raise AssertionError(f"no node serves slot {slot}")


async def test_a_worker_carries_on_through_a_primary_failover(tmp_path: Path) -> None:
    with cluster_and_worker(tmp_path, replicas=1) as (cluster, prefix, run_log):
        async with producing(cluster.servers[0].port, prefix, wait=True) as producer:
            await eventually(lambda: runs_ended(run_log, 30), "the worker is mid-run")
            note("mid-run")
            # The primary of the first queue's slot dies; its replica must take over.
            before = await cluster_nodes(cluster.servers[0].port)
            victim = owner_of(before, queue_slots(prefix)[QUEUES[0]])
            (replica,) = (node for node in before if node.primary_id == victim.id)
            survivor = next(node.port for node in before if node not in (victim, replica))
            cluster.server(victim.port).kill()
            fault = time.time()

            async def promoted() -> bool:
                nodes = {node.id: node for node in await cluster_nodes(survivor)}
                async with Redis(port=survivor, decode_responses=True) as node:
                    info = await node.cluster("INFO")
                return (
                    "master" in nodes[replica.id].flags
                    and "fail" in nodes[victim.id].flags
                    and info["cluster_state"] == "ok"
                )

            await eventually(promoted, "the replica is promoted")
            note(f"promoted (the primary was killed at {fault:.3f})")
            # The promoted replica has none of its own: its writes are acknowledged as is.
            producer.replicas[replica.port] = 0
            acknowledged_then = len(producer.acknowledged)
            await eventually(
                lambda: len(producer.acknowledged) >= acknowledged_then + 60,
                "enqueues are acknowledged again after the promotion",
            )
        await check_completed(url_of(survivor, prefix), producer.acknowledged)
        check_runs(read_runs(run_log), producer.acknowledged, fault)


async def move_slot(slot: int, source: Node, target: Node, nodes: list[Node]) -> None:
    """Move `slot` as `redis-cli --cluster reshard` does: IMPORTING, MIGRATING, MIGRATE its
    keys a few at a time (the worker and the producer go on meanwhile), then NODE.

    The move takes MOVE_SECONDS at least: longer than redis-py's own retries of TRYAGAIN
    (16 tries in about 0.4 s), so that what carries calls through it is the backend's.
    """
    clients = {node.id: Redis(port=node.port, decode_responses=True) for node in nodes}
    done = anyio.current_time() + MOVE_SECONDS
    try:
        await clients[target.id].cluster("SETSLOT", slot, "IMPORTING", source.id)
        await clients[source.id].cluster("SETSLOT", slot, "MIGRATING", target.id)
        while keys := await clients[source.id].cluster("GETKEYSINSLOT", slot, 5):
            await clients[source.id].migrate("127.0.0.1", target.port, keys, 0, 5000)
            await asyncio.sleep(0.05)
        await anyio.sleep_until(done)
        # The target first, so that the source's redirections find it owning the slot.
        for node in sorted(nodes, key=lambda node: node != target):
            await clients[node.id].cluster("SETSLOT", slot, "NODE", target.id)
    finally:
        for client in clients.values():
            await client.aclose()


async def test_a_worker_carries_on_while_its_queue_moves_to_another_node(tmp_path: Path) -> None:
    with cluster_and_worker(tmp_path, replicas=0) as (cluster, prefix, run_log):
        port = cluster.servers[0].port
        async with producing(port, prefix, wait=False) as producer:
            await eventually(lambda: runs_ended(run_log, 30), "the worker is mid-run")
            nodes = await cluster_nodes(port)
            slot = queue_slots(prefix)[QUEUES[0]]
            source = owner_of(nodes, slot)
            target = next(node for node in nodes if node != source)
            note(f"moving slot {slot} (queue {QUEUES[0]})")
            await move_slot(slot, source, target, nodes)
            note("moved")
            acknowledged_then = len(producer.acknowledged)
            await eventually(
                lambda: len(producer.acknowledged) >= acknowledged_then + 60,
                "enqueues go on after the move",
            )
        assert owner_of(await cluster_nodes(port), slot).id == target.id
        # A move is no fault: no enqueue failed, no job ran twice, and the moved queue's keys
        # still agree with each other.
        assert not producer.refused
        await check_completed(url_of(port, prefix), producer.acknowledged)
        check_runs(read_runs(run_log), producer.acknowledged, fault=math.inf)
        raw = RedisCluster(host="127.0.0.1", port=port, decode_responses=True)
        try:
            await check_queue(cast(Redis, raw), RedisBackend(client=raw, prefix=prefix), QUEUES[0])
        finally:
            await raw.aclose()

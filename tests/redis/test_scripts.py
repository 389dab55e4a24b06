"""Scripts: one Cluster slot per call, every key declared, and recovery from NOSCRIPT."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot
from redis.exceptions import ResponseError

import queuekit
from benchmarks.system import free_ports
from queuekit import Attempt, InvalidOptionError, Job, JobStatus, OnFailure, Parent, new_job
from queuekit.activity import ActivityCounts
from queuekit.backends.redis import RedisBackend
from queuekit.backends.redis.calls import Call
from queuekit.backends.redis.enqueue import CHUNK_WEIGHT
from queuekit.backends.redis.keys import REACH
from queuekit.backends.redis.scripts import SCRIPTS, script_keys, script_prelude

from .invariants import check_queue
from .server import RedisServer, running

WORKER = "w"


async def _exercise_every_script(backend: RedisBackend) -> None:
    """A workload that runs each script at least once, on two queues."""
    queue = queuekit.Queue(backend)
    await queue.enqueue("t", queue="a", unique_key="u")
    await queue.enqueue("t", queue="a", unique_key="u")  # a duplicate: no second job
    # An id indexed under another queue goes the two-step way (reserve, then enqueue); here
    # the holder of the unique key answers.
    held = await queue.enqueue("t", queue="b", unique_key="v")
    other = await queue.enqueue("t", queue="a")
    assert (await queue.enqueue("t", queue="b", unique_key="v", id=other.id)).id == held.id
    # A queue this backend has not named yet is named beside the reservation (name_queues).
    with pytest.raises(InvalidOptionError, match="already exists"):
        await queue.enqueue("t", queue="e", id=other.id)
    await queue.enqueue_many(
        [queuekit.new_job("t", queue="b", priority=20), queuekit.new_job("t", queue="a")]
    )
    later = await queue.enqueue("t", queue="b", delay=3600)
    jobs = await backend.claim({"a": 2, "b": 2}, limit=3, lease=30, worker_id=WORKER)
    assert len(jobs) == 3
    first, second, third = jobs
    assert await backend.heartbeat([job.attempt for job in jobs], lease=30) == set()
    assert await backend.complete(first.attempt, '"ok"')
    assert await backend.fail(second.attempt, "boom", retry_in=None) == JobStatus.DEAD
    assert await backend.snooze(third.attempt, 0.0)
    again = await backend.claim({"a": 5, "b": 5}, limit=5, lease=0.01, worker_id=WORKER)
    assert again
    await anyio.sleep(0.05)
    assert (await backend.rescue()).total >= 1
    assert (await queue.cancel(later.id)).status == JobStatus.CANCELLED
    assert (await queue.replay(later.id)).status == JobStatus.PENDING
    assert (await queue.stats("a")).total >= 1
    await backend.wait_for_work(["a", "b"], timeout=0.01)
    assert await backend.wait_for_outcome(first.id, 0.01) is not None
    pending = await queue.enqueue("t", queue="c")
    assert await backend.wait_for_outcome(pending.id, 0.01) is None
    assert await queue.delete_job(pending.id)
    assert await queue.purge("b", JobStatus.PENDING) >= 1
    assert await queue.prune(older_than=0) >= 1
    assert (await queue.list_jobs(type="t")).jobs
    await queue.list_jobs(type="t", status="pending")
    assert await queue.replay_all(queue="a") >= 0
    # Expiry: the sweep (claims run the same step first, in their own scripts).
    await queue.enqueue("t", queue="a", expires_at=datetime.now(UTC) - timedelta(hours=1))
    assert await backend.expire() == 1
    # The type index of jobs stored before it existed is built once, at open.
    await backend._calls.commands([("DEL", backend._keys.types_indexed)])
    await backend._index.index_types()
    await queue.pause("a")
    await queue.resume("a")
    # More due jobs than one call promotes: a single server's claim falls back to peek (which
    # loops over them) and claim.
    await queue.enqueue_many(queuekit.new_job("t", queue="d", delay=0.01) for _ in range(1001))
    # A call larger than one chunk goes in chunks, and a job with more parents than a chunk
    # holds is linked to the rest afterwards; a batch is counted in one script.
    big = queuekit.batch(
        *(queuekit.new_job("t", queue="e") for _ in range(CHUNK_WEIGHT)),
        on_finish=queuekit.new_job("t", queue="e"),
        id="big",
    )
    assert (await queue.enqueue_many(big))[-1].status == JobStatus.WAITING
    assert (await queue.batch_counts("big")).pending == CHUNK_WEIGHT
    await anyio.sleep(0.05)
    assert len(await backend.claim({"d": 2}, limit=2, lease=30, worker_id=WORKER)) == 2
    # Flow control: limits (a queue becoming limited refills its keyless line), a hold, a
    # limited claim, the usage.
    await queue.enqueue_many(queuekit.new_job("t", queue="c", limit_key=k) for k in ("x", None))
    await queue.set_limits("c", queuekit.Limits(concurrency=1))
    await queue.hold("c", 60, key="k")
    assert len(await backend.claim({"c": 2}, limit=2, lease=30, worker_id=WORKER)) == 1
    assert (await queue.limit_usage("c")).running == 1
    # The worker registry: one script (beat, list, drain, remove) in the prefix's own slot.
    assert not await backend.beat_worker("w", "{}", ttl=30)
    assert await backend.drain_worker("w")
    assert [entry.worker_id for entry in await backend.list_workers()] == ["w"]
    await backend.remove_worker("w")
    # Activity by minute (one script call per queue) and run-now, of one job and a batch.
    await backend.add_activity([ActivityCounts("a", enqueued=1), ActivityCounts("b")], keep=60)
    assert [minute.enqueued for minute in await backend.activity("a", 1)] == [1]
    waiting = await queue.enqueue("t", queue="b", delay=3600)
    assert (await queue.run_now(waiting.id)).scheduled_at < waiting.scheduled_at
    assert await queue.run_now_all(queue="b") >= 0
    # Dependents in another queue than their parents (a single server only).
    await exercise_dependencies(backend, "a", "b")


async def exercise_dependencies(backend: RedisBackend, home: str, away: str) -> None:
    """Dependencies through the scripts that decide them: a parent in `home` (ended by a
    cancel, a failure, expiry, a batch cancel, a deletion; replayed one by one and in a
    batch), its dependents in `away`."""
    queue = queuekit.Queue(backend)
    parent = await queue.enqueue("t", queue=home, max_attempts=1)
    child = await queue.enqueue("t", queue=away, after=[parent], workflow_id="w")
    run = Parent(parent.id, OnFailure.RUN)
    grandchild = await queue.enqueue("t", queue=away, after=[child, run], workflow_id="w")
    assert (await queue.cancel(parent.id)).status == JobStatus.CANCELLED
    assert (await queue.get_job(grandchild.id)).status == JobStatus.CANCELLED
    assert (await queue.replay(parent.id)).status == JobStatus.PENDING
    assert (await queue.get_job(grandchild.id)).status == JobStatus.WAITING
    (running,) = await backend.claim({home: 1}, limit=1, lease=30, worker_id=WORKER)
    assert await backend.fail(running.attempt, "boom", retry_in=None) == JobStatus.DEAD
    assert await queue.replay_all(queue=home, status=JobStatus.DEAD) >= 1
    assert await queue.cancel_all(queue=home, status=JobStatus.PENDING) >= 1
    assert await queue.replay_all(queue=home, status=JobStatus.CANCELLED) >= 1
    assert await queue.delete_job(parent.id)
    assert (await queue.list_jobs(workflow_id="w", status=JobStatus.CANCELLED)).jobs
    assert await queue.delete_all(queue=away, status=JobStatus.CANCELLED) >= 2
    # Parents that have finished already decide at enqueue; expiry ends a parent.
    done = await queue.enqueue("t", queue=home)
    await queue.cancel(done.id)
    assert (await queue.enqueue("t", queue=away, after=[done])).status == JobStatus.CANCELLED
    expired = await queue.enqueue(
        "t", queue=home, expires_at=datetime.now(UTC) - timedelta(hours=1)
    )
    follower = await queue.enqueue("t", queue=away, after=[Parent(expired.id, OnFailure.IGNORE)])
    assert await backend.expire() >= 1
    assert (await queue.get_job(follower.id)).status == JobStatus.PENDING
    assert (await queue.stats(away)).waiting == 0


async def test_every_script_call_stays_in_one_slot(
    redis_backend: RedisBackend, raw: aioredis.Redis
) -> None:
    calls: dict[str, list[list[str]]] = defaultdict(list)
    redis_backend._calls.script_observer = lambda name, keys: calls[name].append(list(keys))
    await _exercise_every_script(redis_backend)
    for name in "abcd":
        await check_queue(raw, redis_backend, name)
    assert set(calls) == set(SCRIPTS), f"not exercised: {set(SCRIPTS) - set(calls)}"
    prefix = redis_backend.prefix
    queue_slots = {key_slot(f"{prefix}:{q}".encode()) for q in "abcde"}
    global_slot = key_slot(prefix.encode())
    shard_slots = {key_slot(shard.encode()) for shard in redis_backend._keys.index_shards}
    reach = "{" + prefix + ":"
    deciding = {name for name, names in script_keys().items() if REACH in names}
    for name, key_lists in calls.items():
        for keys in key_lists:
            if name in deciding:
                # A single server only: a job's parents and dependents may be in any queue,
                # and the scripts that decide them bind the prefix of every queue's keys (see
                # test_dependency_decisions_stay_in_their_queue_slot for a Cluster's).
                assert reach in keys, f"{name} does not bind {REACH}"
                keys = [key for key in keys if key != reach]
            slots = {key_slot(key.encode()) for key in keys}
            # A single server only: reserve and store at once, peek and claim across queues.
            if name == "reserve_enqueue":
                assert slots <= {global_slot} | queue_slots | shard_slots
                assert global_slot in slots
                continue
            if name == "peek_claim":
                assert slots <= queue_slots
                continue
            assert len(slots) == 1, f"{name} touched slots {slots}: {keys}"
            expected = (
                shard_slots
                if name in ("reserve", "unindex")
                else {global_slot}
                if name in ("name_queues", "workers")
                else queue_slots
            )
            assert slots <= expected, f"{name} ran in an unexpected slot: {keys}"
            assert all(key.startswith("{" + prefix) for key in keys)


async def test_dependency_decisions_stay_in_their_queue_slot(
    redis_backend: RedisBackend, raw: aioredis.Redis
) -> None:
    """Where a script keeps to one slot (a Cluster, a sharding proxy), the scripts that decide
    dependents bind their own queue's prefix, and touch nothing outside it (strict prelude)."""
    redis_backend._calls.cross_slot = False
    calls: list[tuple[str, list[str]]] = []
    redis_backend._calls.script_observer = lambda name, keys: calls.append((name, list(keys)))
    await exercise_dependencies(redis_backend, "a", "a")
    redis_backend._calls.script_observer = None
    own = redis_backend._keys.of_queue("a", "")
    decided = [(name, keys) for name, keys in calls if REACH in script_keys().get(name, ())]
    assert {name for name, _ in decided} >= {"enqueue", "cancel", "ready_now", "batch", "delete"}
    assert {name for name, _ in decided} >= {"finish", "expire"}
    for name, keys in decided:
        assert own in keys and len({key_slot(key.encode()) for key in keys}) == 1, (name, keys)
    await check_queue(raw, redis_backend, "a")


async def test_strict_prelude_rejects_undeclared_keys(raw: aioredis.Redis) -> None:
    """The tests run every script with this check, so an undeclared key would fail them."""
    prelude = script_prelude(strict_keys=True)
    with pytest.raises(ResponseError, match="undeclared key"):
        await raw.eval(prelude + "\nreturn rcall('GET', 'elsewhere')", 1, "declared")
    assert await raw.eval(prelude + "\nreturn rcall('EXISTS', KEYS[1])", 1, "declared") == 0
    # A declared key ending in ':' covers the keys under it (peek_claim's job keys), only those.
    under = prelude + "\nreturn rcall('EXISTS', ARGV[1])"
    assert await raw.eval(under, 1, "{q}:job:", "{q}:job:1") == 0
    with pytest.raises(ResponseError, match="undeclared key"):
        await raw.eval(under, 1, "{q}:job:", "{r}:job:1")


Flushable = tuple[RedisBackend, aioredis.Redis]


@pytest.fixture
async def flushable(tmp_path: Path) -> AsyncIterator[Flushable]:
    """A backend and a raw client on a redis-server of the test's own: SCRIPT FLUSH on the
    shared server would flush every other client's scripts too."""
    (port,) = free_ports(1)
    server = RedisServer(tmp_path, port)
    with running(server):
        backend = RedisBackend(server.url, strict_keys=True)
        raw = aioredis.Redis.from_url(server.url, decode_responses=True)
        await backend.open()
        try:
            yield backend, raw
        finally:
            await backend.close()
            await raw.aclose()


async def test_work_goes_on_after_script_flush(flushable: Flushable) -> None:
    """SCRIPT FLUSH (or a restart) drops the script cache: the next call reloads, no error."""
    redis_backend, raw = flushable
    queue = queuekit.Queue(redis_backend)
    await queue.enqueue_many(queuekit.new_job("t", queue=q) for q in ("a", "b") for _ in range(20))
    done = 0
    for round_ in range(10):
        await raw.script_flush()
        # Single calls and pipelines (a claim across two queues) both recover.
        jobs = await redis_backend.claim({"a": 2, "b": 2}, limit=4, lease=30, worker_id=WORKER)
        assert len(jobs) == 4, f"round {round_}"
        await raw.script_flush()
        for job in jobs:
            assert await redis_backend.complete(job.attempt)
            done += 1
    assert done == 40
    assert (await queue.stats("a")).completed + (await queue.stats("b")).completed == 40


async def test_flush_during_concurrent_work_loses_nothing(flushable: Flushable) -> None:
    redis_backend, raw = flushable
    total = 600
    queue = queuekit.Queue(redis_backend)
    await queue.enqueue_many(queuekit.new_job("t", {"n": n}) for n in range(total))
    completed: list[str] = []

    async def drain() -> None:
        while jobs := await redis_backend.claim(
            {"default": 5}, limit=5, lease=30, worker_id=WORKER
        ):
            for job in jobs:
                assert await redis_backend.complete(job.attempt)
                completed.append(job.id)

    async def flusher() -> None:
        for _ in range(20):
            await raw.script_flush()
            await anyio.sleep(0.005)

    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(drain)
        group.start_soon(flusher)
    assert len(completed) == total and len(set(completed)) == total


async def test_ghost_attempts_touch_nothing(redis_backend: RedisBackend) -> None:
    ghost = Attempt("never-enqueued", 1, "no-token")
    assert not await redis_backend.snooze(ghost, 1.0)
    assert await redis_backend.cancel("never-enqueued") is None
    assert await redis_backend.replay("never-enqueued") is None


async def test_a_finish_batch_is_one_script_call_per_queue(
    redis_backend: RedisBackend, raw: aioredis.Redis
) -> None:
    """Completions, failures and snoozes made together go out as one `finish` call per queue,
    in one round trip, and each caller learns its own job's outcome; a stale attempt changes
    nothing even when the current attempt of the same job is in the batch."""
    queue = queuekit.Queue(redis_backend)
    await queue.enqueue_many(
        [queuekit.new_job("t", {"n": n}, queue="a") for n in range(5)]
        + [queuekit.new_job("t", {"n": n}, queue="b", max_attempts=1) for n in range(2)]
    )
    jobs = await redis_backend.claim({"a": 5, "b": 2}, limit=7, lease=30, worker_id=WORKER)
    by_n = {(job.queue, job.payload["n"]): job for job in jobs}
    # a4's first attempt failed and a second attempt holds the job: the first is stale.
    stale = by_n["a", 4].attempt
    assert await redis_backend.fail(stale, "x", retry_in=0) == JobStatus.FAILED
    (again,) = await redis_backend.claim({"a": 1}, limit=1, lease=30, worker_id=WORKER)
    assert again.attempt.job_id == stale.job_id and again.attempt.number == 2
    assert again.attempt.token != stale.token
    watched = asyncio.ensure_future(redis_backend.wait_for_outcome(by_n["a", 0].id, 5))
    await anyio.sleep(0.05)  # the waiter is registered

    calls: dict[str, list[list[str]]] = defaultdict(list)
    redis_backend._calls.script_observer = lambda name, keys: calls[name].append(list(keys))
    batches = redis_backend._batcher.batches
    outcomes = await asyncio.gather(
        redis_backend.complete(by_n["a", 0].attempt, '"done"'),
        redis_backend.fail(by_n["a", 1].attempt, "later", retry_in=60),
        redis_backend.fail(by_n["a", 2].attempt, "fatal", retry_in=None),
        redis_backend.snooze(by_n["a", 3].attempt, 0.0),
        redis_backend.complete(stale),
        redis_backend.fail(again.attempt, "again", retry_in=0),
        redis_backend.fail(by_n["b", 0].attempt, "last", retry_in=None),
        redis_backend.complete(by_n["b", 1].attempt),
        redis_backend.complete(Attempt("never-enqueued", 1, "no-token")),
    )
    assert outcomes == [
        JobStatus.COMPLETED,
        JobStatus.FAILED,
        JobStatus.DEAD,
        JobStatus.PENDING,
        None,
        JobStatus.FAILED,
        JobStatus.DEAD,
        JobStatus.COMPLETED,
        None,
    ]
    assert redis_backend._batcher.batches == batches + 1
    assert (await watched) is not None  # the waiter on a0 was woken
    assert set(calls) - {"watch", "unwatch"} == {"finish"}  # (those two are the waiter's)
    bound = len(script_keys()["finish"])
    per_queue = sorted((keys[0].split("}")[0], len(keys)) for keys in calls["finish"])
    tag = "{" + redis_backend.prefix
    assert per_queue == [(f"{tag}:a", bound + 2 * 6), (f"{tag}:b", bound + 2 * 2)]

    states = {key: await queue.get_job(job.id) for key, job in {**by_n, ("a", 5): again}.items()}
    expected = {
        ("a", 0): (JobStatus.COMPLETED, 1),
        ("a", 1): (JobStatus.FAILED, 1),
        ("a", 2): (JobStatus.DEAD, 1),
        ("a", 3): (JobStatus.PENDING, 0),  # a snooze does not count the attempt
        ("a", 4): (JobStatus.FAILED, 2),
        ("a", 5): (JobStatus.FAILED, 2),
        ("b", 0): (JobStatus.DEAD, 1),
        ("b", 1): (JobStatus.COMPLETED, 1),
    }
    assert {k: (job.status, job.attempts) for k, job in states.items() if job} == expected
    assert states["a", 0] is not None and states["a", 0].result == "done"
    assert states["a", 4] is not None and states["a", 4].last_error == "again"
    for name in "ab":
        await check_queue(raw, redis_backend, name)


async def refuse_duplicate(
    backend: RedisBackend, raw: aioredis.Redis, duplicate: Job, queue: str
) -> None:
    """A batch of a new job in `queue` and one with the id of `duplicate` is refused, and
    the new job is neither stored nor indexed."""
    fresh = new_job("t", queue=queue, id=f"fresh-{queue}")
    with pytest.raises(InvalidOptionError, match="already exists"):
        await backend.enqueue_many([fresh, new_job("t", queue=duplicate.queue, id=duplicate.id)])
    assert await backend.get_job(fresh.id) is None
    assert await raw.hget(backend._keys.index_of(fresh.id), fresh.id) is None
    assert await raw.hget(backend._keys.index_of(duplicate.id), duplicate.id) == duplicate.queue


async def check_enqueue(backend: RedisBackend, raw: aioredis.Redis) -> list[list[str]]:
    """Enqueue's contract, whichever way the backend enqueues; returns the script names
    each enqueue call ran: one job, a batch over two queues, then the refused ones."""
    calls: list[str] = []
    backend._calls.script_observer = lambda name, keys: calls.append(name)
    rounds: list[list[str]] = []

    def called() -> list[str]:
        rounds.append(calls[:])
        calls.clear()
        return rounds[-1]

    queue = queuekit.Queue(backend)
    one = await queue.enqueue("t", 1, queue="a")
    called()
    batch = await queue.enqueue_many(
        [
            new_job("t", 2, queue="b", priority=20),
            new_job("t", 3, queue="a", unique_key="u"),
            new_job("t", 4, queue="b", unique_key="u", delay=60),
            new_job("t", 5, queue="a", unique_key="u"),  # held by the job before it
        ]
    )
    called()
    assert batch[3] == batch[1]
    assert [job.queue for job in batch] == ["b", "a", "b", "a"]
    assert batch[2].scheduled_at > batch[2].created_at
    page = await queue.list_jobs(limit=10)
    listed = [job.payload for job in page.jobs]
    calls.clear()  # the listing's own scripts
    # Seqs follow enqueue order within a queue, and the server's clock across queues: one
    # server numbers a call's jobs in the call's order, a Cluster's nodes by their clocks.
    stored = [one, *batch[:3]]
    seqs = [int(str(await raw.hget(backend._keys.job(j.queue, j.id), "seq"))) for j in stored]
    assert seqs[0] < min(seqs[1:]) and seqs[1] < seqs[3] and seqs[0] < seqs[2]
    assert listed[-1] == 1 and [p for p in listed if p in (2, 4)] == [4, 2]
    if backend._calls.cross_slot:
        assert listed == [4, 3, 2, 1]  # enqueue order
        assert seqs[1:] == list(range(seqs[1], seqs[1] + 3))  # the duplicate takes none

    # A duplicate explicit id refuses its queue's part of the batch: nothing stored there,
    # nothing indexed.
    for duplicate in (one, batch[0]):
        await refuse_duplicate(backend, raw, duplicate, duplicate.queue)
        called()
    # The id of a job in another queue is refused too; the job keeps its id.
    with pytest.raises(InvalidOptionError, match="already exists"):
        await queue.enqueue("t", queue="b", id=one.id)
    called()
    assert await queue.get_job(one.id) == one
    assert (await queue.enqueue("t", queue="a", unique_key="u")).id == batch[1].id
    called()
    backend._calls.script_observer = None
    for name in "ab":
        await check_queue(raw, backend, name)
    return rounds


async def test_a_single_server_enqueue_is_one_script_call(
    redis_backend: RedisBackend, raw: aioredis.Redis
) -> None:
    rounds = await check_enqueue(redis_backend, raw)
    one_call = ["reserve_enqueue"]
    # Only the id of another queue's job falls back to the reservation and the store apart.
    assert rounds == [one_call, one_call, one_call, one_call, [*one_call, "reserve"], one_call]
    # One script is all or nothing across queues too (a Cluster only within each queue).
    (job,) = (await redis_backend.list_jobs(queue="a", limit=1)).jobs
    await refuse_duplicate(redis_backend, raw, job, "b")


async def test_a_server_refusing_keys_of_several_slots_gets_two_steps(
    redis_backend: RedisBackend, raw: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy sharding behind one address answers CROSSSLOT: enqueue falls back for good."""
    calls: list[str] = []
    send = redis_backend._calls._send_evals

    async def crossslot(calls_: Sequence[Call], **options: Any) -> list[Any]:
        calls.append(calls_[0][0])
        if calls_[0][0] == "reserve_enqueue":
            raise ResponseError("CROSSSLOT Keys in request don't hash to the same slot")
        return await send(calls_, **options)

    monkeypatch.setattr(redis_backend._calls, "_send_evals", crossslot)
    queue = queuekit.Queue(redis_backend)
    first = await queue.enqueue("t", queue="a")
    second = await queue.enqueue("t", queue="a")
    assert calls == ["reserve_enqueue", "reserve", "enqueue", "reserve", "enqueue"]
    assert [job.id for job in (await queue.list_jobs()).jobs] == [second.id, first.id]
    await check_queue(raw, redis_backend, "a")


async def test_a_single_server_claim_is_one_script_call(redis_backend: RedisBackend) -> None:
    """Across queues, in claim order, within each queue's slots, paused queues left out."""
    queue = queuekit.Queue(redis_backend)
    await queue.enqueue_many(
        [queuekit.new_job("t", {"q": "a", "n": n}, queue="a", priority=n % 2) for n in range(4)]
        + [queuekit.new_job("t", {"q": "b", "n": n}, queue="b") for n in range(3)]
        + [queuekit.new_job("t", {"q": "c", "n": 0}, queue="c", priority=30)]
        + [queuekit.new_job("t", {"q": "a", "n": 9}, queue="a", priority=40, delay=0.01)]
    )
    await queue.pause("c")
    await anyio.sleep(0.05)  # a9 is due: the claim promotes it
    calls: list[str] = []
    redis_backend._calls.script_observer = lambda name, keys: calls.append(name)
    slots = {"a": 3, "b": 2, "c": 1}
    jobs = await redis_backend.claim(slots, limit=5, lease=30, worker_id=WORKER)
    assert calls == ["peek_claim"]
    assert [(job.payload["q"], job.payload["n"]) for job in jobs] == [
        ("a", 9),
        ("b", 0),
        ("b", 1),
        ("a", 1),
        ("a", 3),
    ]
    assert all(job.status == JobStatus.RUNNING and job.worker_id == WORKER for job in jobs)
    assert await redis_backend.complete(jobs[0].attempt)  # the claim told the queue cache
    await queue.resume("c")
    (c,) = await redis_backend.claim(slots, limit=1, lease=30, worker_id=WORKER)
    assert c.payload == {"q": "c", "n": 0}

"""Random calls with unique and debounce keys, replace, batches and trigger edges, made on the
Redis backend and on the memory backend (the reference) side by side: every answer agrees."""

from __future__ import annotations

import random
from typing import Any

import pytest

import queuekit
from queuekit import Backend, Job, JobStatus, OnFailure, Parent
from queuekit.backends.memory import MemoryBackend
from queuekit.backends.redis import RedisBackend

DAY, HOUR = 86_400.0, 3600.0
TERMINAL = (JobStatus.COMPLETED, JobStatus.DEAD, JobStatus.CANCELLED)


def _seen(job: Job | None) -> tuple[Any, ...] | None:
    """What both backends must agree on (not times: each has its own clock)."""
    if job is None:
        return None
    return (job.id, job.status, job.payload, job.last_error, job.batch_id, job.debounce_key)


async def _end(backend: Backend, job_id: str, dead: bool) -> set[str]:
    """Claim every claimable job, end `job_id` if among them (completed or dead) and snooze
    the others back; the ids claimed."""
    claimed = await backend.claim({"default": 1000}, limit=1000, lease=60, worker_id="w")
    for running in claimed:
        if running.id != job_id:
            assert await backend.snooze(running.attempt, 0.0) == JobStatus.PENDING
        elif dead:
            assert await backend.fail(running.attempt, "boom", retry_in=None) == JobStatus.DEAD
        else:
            assert await backend.complete(running.attempt) == JobStatus.COMPLETED
    return {job.id for job in claimed}


def _request(rng: random.Random, n: int, stored: list[str]) -> queuekit.NewJob:
    """A request of id `j<n>`, perhaps with a key and options, perhaps after jobs of
    `stored`. (Never after a job that is not stored: the memory backend keeps the rewrites of
    a call it refuses, the others do not.)"""
    options: dict[str, Any] = {"id": f"j{n}", "delay": rng.choice((0, 0, HOUR))}
    kind = rng.choice(("plain", "unique", "unique", "debounce"))
    if kind == "unique":
        options["unique_key"] = rng.choice(("u1", "u2"))
        options["on_conflict"] = rng.choice(("return", "replace"))
        states = rng.sample(("completed", "dead", "cancelled"), rng.randint(0, 2))
        options["unique_states"] = states or None
        options["unique_for"] = rng.choice((None, DAY)) if states else None
    elif kind == "debounce":
        options["debounce_key"] = rng.choice(("d1", "d2"))
        options["debounce_max"] = rng.choice((None, HOUR))
    if stored and rng.random() < 0.3:
        policy = rng.choice(list(OnFailure))
        options["after"] = [Parent(p, policy) for p in rng.sample(stored, min(len(stored), 2))]
    if rng.random() < 0.3:
        options["batch_id"] = "b"
    return queuekit.new_job("t", {"n": n}, **options)


async def _both(backends: list[Backend], call: str | Any, *args: Any) -> list[Any]:
    """The call (a method's name, or a function of the backend) on each backend: what it
    returned (jobs as `_seen` compares them), or the type of error it raised."""
    outcomes: list[Any] = []
    for backend in backends:
        try:
            if isinstance(call, str):
                answer = await getattr(backend, call)(*args)
            else:
                answer = await call(backend, *args)
        except Exception as exc:  # (compared: both must raise the same)
            outcomes.append(type(exc).__name__)
            continue
        if isinstance(answer, list):
            outcomes.append([_seen(job) for job in answer])
        else:
            outcomes.append(_seen(answer) if isinstance(answer, Job) else answer)
    return outcomes


@pytest.mark.parametrize("seed", range(4))
async def test_redis_answers_as_the_memory_backend_does(
    seed: int, redis_backend: RedisBackend
) -> None:
    rng = random.Random(seed)
    memory = MemoryBackend()
    await memory.open()
    backends: list[Backend] = [memory, redis_backend]
    ids: list[str] = []
    stored: list[Any] = [[]]
    try:
        for n in range(300):
            action = rng.choice(("enqueue",) * 4 + ("many", "end", "end", "kill", "repair"))
            if action == "enqueue" or not ids:
                request = _request(rng, n, [job[0] for job in stored[0]])
                ids.append(request.id)
                answers = await _both(backends, "enqueue", request)
            elif action == "many":
                alive = [job[0] for job in stored[0]]
                requests = [_request(rng, 1000 * n + k, alive) for k in range(rng.randint(2, 5))]
                ids += [request.id for request in requests]
                answers = await _both(backends, "enqueue_many", requests)
            elif action in ("end", "kill"):
                target = rng.choice(ids)
                answers = await _both(backends, _end, target, action == "kill")
            else:
                repair, target = rng.choice(("cancel", "replay", "delete_job")), rng.choice(ids)
                answers = await _both(backends, repair, target)
            assert answers[0] == answers[1], (n, action)
            if n % 50 == 49:
                answers = await _both(backends, "prune", 0.0, list(TERMINAL))
                assert answers[0] == answers[1], n
            stored = await _both(backends, "get_jobs", ids)
            assert stored[0] == stored[1], (n, action, answers)
        counts = await _both(backends, "batch_counts", "b")
        assert counts[0] == counts[1]
    finally:
        await memory.close()

"""What must hold between a queue's job hashes and its sets after any sequence of calls."""

from __future__ import annotations

from typing import Any, cast

import redis.asyncio as aioredis

from queuekit.backends.redis import RedisBackend
from queuekit.backends.redis.keys import MEMBER_ID_OFFSET

CLAIMABLE = {"pending", "failed"}
TERMINAL = {"completed", "dead", "cancelled"}
STATUSES = CLAIMABLE | TERMINAL | {"running", "waiting"}


async def check_queue(raw: aioredis.Redis, backend: RedisBackend, queue: str) -> dict[str, int]:
    """Assert the layout of one queue is consistent; return how many jobs are in each status.

    `raw` must decode responses.
    """

    def key(name: str) -> str:
        return backend._keys.of_queue(queue, name)

    job_prefix = key("job:")
    jobs: dict[str, dict[str, str]] = {}
    async for job_key in raw.scan_iter(match=job_prefix + "*", count=1000):
        jobs[job_key[len(job_prefix) :]] = cast(dict[str, str], await raw.hgetall(job_key))

    async def members(name: str) -> dict[str, float]:
        reply: Any = await raw.zrange(key(name), 0, -1, withscores=True)
        return {member: float(score) for member, score in reply}

    every = await members("all")
    assert set(every) == set(jobs), "the all set and the job hashes differ"
    by_status = {status: await members(f"status:{status}") for status in STATUSES}
    ready, scheduled = await members("ready"), await members("scheduled")
    leases = await members("leases")
    finished = {status: await members(f"finished:{status}") for status in TERMINAL}
    unique = cast(dict[str, str], await raw.hgetall(key("unique")))
    index = {job_id: await raw.hget(backend._keys.index_of(job_id), job_id) for job_id in jobs}
    in_line = {m[MEMBER_ID_OFFSET:]: m for m in (*ready, *scheduled)}
    assert len(in_line) == len(ready) + len(scheduled), "a job is both ready and scheduled"
    counts = dict.fromkeys(STATUSES, 0)

    for job_id, fields in jobs.items():
        status, seq = fields["status"], int(fields["seq"])
        counts[status] += 1
        assert fields["id"] == job_id and fields["queue"] == queue
        assert index.get(job_id) == queue, f"{job_id} is not indexed to {queue}"
        assert every[job_id] == seq
        holders = [s for s, ids in by_status.items() if job_id in ids]
        assert holders == [status], f"{job_id} ({status}) is in status sets {holders}"
        assert by_status[status][job_id] == seq
        member = f"{int(fields['priority']):04d}{seq:016d}{job_id}"
        if status in CLAIMABLE:
            assert in_line.get(job_id) == member, f"{job_id} ({status}) is not in line"
        else:
            assert job_id not in in_line, f"{job_id} ({status}) is still in line"
        assert (job_id in leases) == (status == "running"), f"{job_id} lease vs {status}"
        if status == "waiting":
            await _check_waiting(raw, backend, queue, job_id, int(fields["open_parents"]))
        if status == "running":
            assert fields.get("lease_expires_at") and fields.get("worker_id")
            assert fields.get("lease_token")
        else:
            assert "lease_expires_at" not in fields
        # The worker of the latest claim stays after its attempt; replay clears both.
        assert ("worker_id" in fields) == ("started_at" in fields), f"{job_id} worker vs start"
        for done, ids in finished.items():
            assert (job_id in ids) == (status == done), f"{job_id} finished-set vs {status}"
        unique_key = fields.get("unique_key")
        if unique_key is not None and status not in TERMINAL:
            assert unique.get(unique_key) == job_id, f"{job_id} does not hold {unique_key}"
    for unique_key, holder in unique.items():
        fields = jobs.get(holder, {})
        assert fields.get("unique_key") == unique_key
        holds_finished = fields["status"] in fields.get("unique_states", "").split(",")
        assert fields["status"] not in TERMINAL or holds_finished
    assert not set(leases) - set(jobs) and not set(in_line) - set(jobs)
    by_type: dict[str, dict[str, float]] = {}
    async for type_key in raw.scan_iter(match=key("type:") + "*", count=1000):
        by_type[type_key[len(key("type:")) :]] = await members(type_key[len(key("")) :])
    for job_id, fields in jobs.items():
        assert by_type.get(fields["type"], {}).get(job_id) == int(fields["seq"]), job_id
    indexed = sum(len(ids) for ids in by_type.values())
    assert indexed == len(jobs), "the type index holds jobs that are gone"
    return counts


async def _check_waiting(
    raw: aioredis.Redis, backend: RedisBackend, queue: str, job_id: str, open_parents: int
) -> None:
    """A waiting job counts its unfinished parents, of which it has one at least, and no parent
    whose edge says cancel is dead, cancelled or gone (that parent would have cancelled it)."""
    unfinished = 0
    edges_key = backend._keys.of_queue(queue, f"parents:{job_id}")
    edges = cast(list[str], await raw.lrange(edges_key, 0, -1))
    for edge in edges:
        parent, on_failure, *elsewhere = edge.split("|")
        parent_key = backend._keys.job(elsewhere[0] if elsewhere else queue, parent)
        status = cast(str | None, await raw.hget(parent_key, "status"))
        if status is not None and status not in TERMINAL:
            unfinished += 1
        elif on_failure == "cancel":
            assert status == "completed", f"{job_id} waits though parent {parent} is {status}"
    assert open_parents == unfinished > 0, f"{job_id} counts {open_parents}, not {unfinished}"

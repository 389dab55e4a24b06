"""The Redis backend's sweep of jobs that expired unstarted: expire.lua per queue, in batches."""

from __future__ import annotations

from collections.abc import Sequence

from ...backend import EXPIRE_BATCH
from .calls import RedisCalls
from .keys import Keys


async def expire_queues(calls: RedisCalls, keys: Keys, queues: Sequence[str]) -> int:
    """Run expire.lua on every queue, a batch each per round trip, until none has more due;
    return how many jobs it cancelled as expired."""
    expired = 0
    todo = list(queues)
    while todo:
        replies = await calls.eval_many(
            [("expire", keys.bound(queue, "expire"), [str(EXPIRE_BATCH)]) for queue in todo]
        )
        expired += sum(int(count) for count, _ in replies)
        todo = [queue for queue, (_, more) in zip(todo, replies, strict=True) if int(more)]
    return expired

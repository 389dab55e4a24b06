"""`BatchCounts`: `RedisBackend.batch_counts`, each queue's part counted by lua/batch_counts.lua."""

from __future__ import annotations

from ...backend import Backend
from ...batches import BatchCounts
from ...job import JobStatus
from .calls import RedisCalls
from .index import JobIndex
from .keys import Keys
from .scripts import script_keys

COUNTED = [JobStatus(name.removeprefix("status:")) for name in script_keys()["batch_counts"]]
"""The states batch_counts.lua counts, in the order of its reply."""


class BatchCounting(Backend):
    """A batch's jobs live in the set `batch:<id>` of each queue that has some: one script per
    queue, all pipelined in one round trip (each queue's counts read at one moment)."""

    _calls: RedisCalls
    _keys: Keys
    _index: JobIndex

    async def batch_counts(self, batch_id: str) -> BatchCounts:
        queues = await self._index.queue_names()
        replies = await self._calls.eval_many(
            [
                (
                    "batch_counts",
                    [
                        *self._keys.bound(q, "batch_counts"),
                        self._keys.of_queue(q, f"batch:{batch_id}"),
                    ],
                    [],
                )
                for q in queues
            ]
        )
        totals = dict.fromkeys(COUNTED, 0)
        for reply in replies:
            for status, count in zip(COUNTED, reply, strict=True):
                totals[status] += int(count)
        return BatchCounts.of(totals)

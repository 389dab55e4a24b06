"""`ActivityLog`: `RedisBackend`'s activity by minute, a hash per queue and minute."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from ...activity import BUCKETS, DEPTH_CAP, ActivityCounts, Minute
from ...backend import Backend
from ..activity_rows import count_fields
from .calls import Call, RedisCalls
from .keys import Keys


class ActivityLog(Backend):
    """Adding to and reading the per-queue minutes (see lua/activity.lua, which also samples
    a minute's depth): one script call per queue, all in one round trip."""

    _calls: RedisCalls
    _keys: Keys

    async def add_activity(
        self, counts: Sequence[ActivityCounts], *, keep: float, depth_cap: int = DEPTH_CAP
    ) -> None:
        calls: list[Call] = [
            (
                "activity",
                self._keys.bound(entry.queue, "activity"),
                ["add", repr(keep), json.dumps(count_fields(entry)), str(depth_cap)],
            )
            for entry in counts
        ]
        await self._calls.eval_many(calls)

    async def activity(self, queue: str, minutes: int) -> list[Minute]:
        reply = await self._calls.eval(
            "activity", self._keys.bound(queue, "activity"), ["read", str(minutes)]
        )
        return [_minute(queue, entry) for entry in reply]


def _minute(queue: str, entry: list[bytes | str | int]) -> Minute:
    at, *pairs = entry
    fields = {str(name): int(value) for name, value in zip(pairs[::2], pairs[1::2], strict=True)}

    def buckets(prefix: str) -> tuple[int, ...]:
        return tuple(fields.get(f"{prefix}{i}", 0) for i in range(1, BUCKETS + 1))

    return Minute(
        queue=queue,
        at=datetime.fromtimestamp(int(at), UTC),
        enqueued=fields.get("e", 0),
        completed=fields.get("c", 0),
        failed=fields.get("f", 0),
        dead=fields.get("d", 0),
        wait=buckets("w"),
        run=buckets("r"),
        depth=fields.get("q"),
    )

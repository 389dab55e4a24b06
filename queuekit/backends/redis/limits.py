"""`FlowControl`: a Redis backend's queue limits, holds and usage, and the limited claim."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from ...job import Job
from ...limits import Limits, LimitUsage
from .calls import RedisCalls
from .keys import Keys
from .replies import EPOCH, job_from_hash, micros


def _at(us: str | int) -> datetime:
    """Epoch microseconds (as the scripts count) as a datetime."""
    return EPOCH + timedelta(microseconds=int(us))


async def claim_limited(
    calls: RedisCalls,
    keys: Keys,
    queues: Sequence[str],
    free: Mapping[str, int],
    limit: int,
    attempt: tuple[str, str, str],
) -> tuple[list[Job], set[str]]:
    """Claim from limited queues, one claim_limited.lua call each (pipelined), sharing out
    `limit` in turn; returns the jobs, and the queues that turned out to have no limits
    (nothing was claimed from them)."""
    shares: dict[str, int] = {}
    left = limit
    for queue in queues:
        share = min(free.get(queue, 0), left)
        if share > 0:
            shares[queue] = share
            left -= share
    replies = await calls.eval_many(
        [
            ("claim_limited", keys.bound(queue, "claim_limited"), [str(share), *attempt])
            for queue, share in shares.items()
        ]
    )
    jobs: list[Job] = []
    unlimited: set[str] = set()
    for queue, reply in zip(shares, replies, strict=True):
        if reply[0] == "unlimited":
            unlimited.add(queue)
        else:
            jobs += [job_from_hash(fields) for _, fields in reply[1:]]
    return jobs, unlimited


class FlowControl:
    """The limits, holds and usage of one backend's queues."""

    def __init__(self, calls: RedisCalls, keys: Keys) -> None:
        self._calls = calls
        self._keys = keys

    async def set_limits(self, queue: str, limits: Limits | None) -> None:
        """Store them, then (when the queue became limited) refill its keyless line."""
        # Name the queue in the {prefix} set (as pause does), so get_limits finds it.
        await self._calls.commands([("SADD", self._keys.queues, queue)])
        text = "" if limits is None else limits.to_json()
        building = await self._calls.eval(
            "limits_set", self._keys.bound(queue, "limits_set"), [text]
        )
        while int(building):
            done = await self._calls.eval(
                "limits_build", self._keys.bound(queue, "limits_build"), []
            )
            building = not int(done)

    async def get_limits(self, queues: Sequence[str]) -> dict[str, Limits]:
        replies = await self._calls.commands(
            [("GET", self._keys.of_queue(queue, "limits")) for queue in queues]
        )
        return {
            queue: Limits.from_json(text)
            for queue, text in zip(queues, replies, strict=True)
            if text is not None
        }

    async def hold(self, queue: str, key: str | None, seconds: float) -> None:
        await self._calls.commands([("SADD", self._keys.queues, queue)])
        args = [key or "", str(micros(seconds))]
        await self._calls.eval("hold", self._keys.bound(queue, "hold"), args)

    async def limit_usage(self, queue: str) -> LimitUsage:
        reply = await self._calls.eval("limit_usage", self._keys.bound(queue, "limit_usage"), [])
        text, running, _, _, window_end, started, queue_held, held, busiest = reply
        return LimitUsage(
            limits=Limits.from_json(text) if text else None,
            running=int(running),
            started_in_window=int(started),
            window_ends_at=_at(window_end) if window_end != "" else None,
            held_until=_at(queue_held) if queue_held != "" else None,
            held_keys={held[i]: _at(held[i + 1]) for i in range(0, len(held), 2)},
            running_by_key={
                busiest[i]: int(float(busiest[i + 1])) for i in range(0, len(busiest), 2)
            },
        )

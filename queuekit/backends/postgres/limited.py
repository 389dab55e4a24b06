"""`LimitedClaims`: flow control for `PostgresBackend`: limits, holds, and the limited claim."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence

import asyncpg

from ...job import Job
from ...limits import Limits, LimitUsage
from .. import flow
from ..rows import job_from_row
from .table import PostgresTable

LIMITS_CACHE_SECONDS = 0.5
"""How long a claim trusts its last read of which queues have limits. Only routing depends on
it: the claim statement itself skips every queue with limits, so a queue given limits
meanwhile is left alone (not over-claimed) until the next read, and one whose limits were
removed is claimed by the limited path's fallback."""
BUSIEST_KEYS = 100
"""How many keys `limit_usage` counts running jobs of."""
FORGET_BATCH = 500
"""How many keys one call of the key-state sweep looks at."""
FORGET_BATCHES = 10
"""How many of those one round of the sweep makes at most (the next round goes on from
there), so a round costs a bounded time however many keys there are."""


class LimitedClaims(PostgresTable):
    """Storing limits and holds, reporting their use, and claiming a queue that has limits."""

    async def set_limits(self, queue: str, limits: Limits | None) -> None:
        if limits is None:
            await self._fetch("clear_limits", queue, self.channel)
            self._limited.pop(queue, None)
        else:
            await self._fetch("set_limits", queue, limits.to_json(), self.channel)
            self._limited[queue] = limits
        # This process's idle workers look again under the new limits (others hear NOTIFY).
        self._work_waiters.wake([queue])

    async def get_limits(self) -> dict[str, Limits]:
        rows = await self._fetch("get_limits")
        return {row["queue"]: Limits.from_json(row["limits"]) for row in rows}

    async def hold(self, queue: str, key: str | None, seconds: float) -> None:
        await self._execute("hold", queue, flow.QUEUE_KEY if key is None else key, seconds)
        self._held.add(queue)

    async def limit_usage(self, queue: str) -> LimitUsage:
        (row,) = await self._fetch("limit_usage", queue, BUSIEST_KEYS)
        limits = None if row["limits"] is None else Limits.from_json(row["limits"])
        usage = flow.Usage(
            running=row["running"],
            running_by_key=_pairs(row["running_keys"], row["running_counts"]),
            states=_states(row),
        )
        return flow.report(limits, row["now"], usage, BUSIEST_KEYS)

    async def _limited_queues(self) -> set[str]:
        """The queues with limits or a key held, read again when the last read is older than
        a moment."""
        if time.monotonic() - self._limited_read_at >= LIMITS_CACHE_SECONDS:
            rows = await self._fetch("limited_queues")
            self._limited = {
                row["queue"]: Limits.from_json(row["limits"])
                for row in rows
                if row["limits"] is not None
            }
            self._held = {row["queue"] for row in rows if row["limits"] is None}
            self._limited_read_at = time.monotonic()
        return self._limited.keys() | self._held

    _forget_after: tuple[str, str] = ("", "")
    """Where the key-state sweep goes on from: the last (queue, key) it looked at."""

    async def _forget_keys(self) -> int:
        """A round of the workers' sweep of key states (`forget_keys`, migration 14): the
        states of keys with no unfinished job and nothing open go; how many rows went."""
        forgotten = 0
        for _ in range(FORGET_BATCHES):
            (row,) = await self._fetch("forget_keys", *self._forget_after, FORGET_BATCH)
            forgotten += row["forgotten"]
            if row["looked"] < FORGET_BATCH:
                self._forget_after = ("", "")
                break
            self._forget_after = (row["last_queue"], row["last_key"])
        return forgotten

    async def _claim_limited(
        self, queue: str, free: int, *, lease: float, worker_id: str, token: str
    ) -> list[Job] | None:
        """Claim up to `free` jobs of `queue` under its limits and holds; None when it has
        neither any more (the caller claims it the ordinary way).

        One round trip: the function that the statement `claim_limited` calls (migration 14)
        locks the queue, reads, chooses as `flow.choose` does, and claims, in the database.
        """
        rows = await self._fetch("claim_limited", queue, free, lease, worker_id, token)
        if rows and not rows[0]["listed"]:
            self._limited.pop(queue, None)
            self._held.discard(queue)
            return None
        if rows and rows[0]["limits"] is not None:
            self._limited[queue] = _parsed(rows[0]["limits"])
        return [job_from_row(row) for row in rows]


@functools.lru_cache(maxsize=256)
def _parsed(text: str) -> Limits:
    """`Limits` from their stored JSON text, parsed once per text: every claim reads them."""
    return Limits.from_json(text)


def _pairs(keys: Sequence[str] | None, values: Sequence[int] | None) -> dict[str, int]:
    """Parallel arrays (NULL when empty) as a mapping."""
    return dict(zip(keys or (), values or (), strict=True))


def _states(row: asyncpg.Record) -> dict[str, flow.KeyState]:
    """The key states a statement read as parallel arrays (see queries.sql)."""
    return {
        key: flow.KeyState(window, started, held_until, served_at)
        for key, window, started, held_until, served_at in zip(
            row["state_keys"] or (),
            row["windows"] or (),
            row["started"] or (),
            row["held_until"] or (),
            row["served_at"] or (),
            strict=True,
        )
    }

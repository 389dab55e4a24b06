"""`LimitedClaims`: flow control for `PostgresBackend`: limits, holds, and the limited claim."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from ...job import Job
from ...limits import Limits, LimitUsage
from .. import flow
from ..rows import job_from_row
from .connections import SET_LOCAL, Connection
from .table import PostgresTable

LIMITS_CACHE_SECONDS = 0.5
"""How long a claim trusts its last read of which queues have limits. Only routing depends on
it: the claim statement itself skips every queue with limits, so a queue given limits
meanwhile is left alone (not over-claimed) until the next read, and one whose limits were
removed is claimed by the limited path's fallback."""
MIN_TURN_BATCH = 16
"""The fewest keys a limited claim reads in turn order at once (it reads twice as many each
time it needs more): enough, usually, to step over keys blocked by their own running jobs."""
BUSIEST_KEYS = 100
"""How many keys `limit_usage` counts running jobs of."""


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

    async def _claim_limited(
        self, queue: str, free: int, *, lease: float, worker_id: str, token: str
    ) -> list[Job] | None:
        """Claim up to `free` jobs of `queue` under its limits and holds; None when it has
        neither any more (the caller claims it the ordinary way).

        The claims of one queue must each see what the one before it wrote. First without a
        lock, in two round trips: a read, then a claim that writes only if no other claim of
        the queue committed since the read (`turn` in queries.sql), which is the usual case
        for a worker's queue. Otherwise, or when the read found keys to forget (removing
        them needs the key locks held from before a snapshot to the end), under the lock.
        """
        if not self._tuned:
            # Through a transaction-mode PgBouncer each statement would need a transaction
            # of its own for its settings: there the locked way costs fewer round trips.
            claimed = await self._claim_unlocked(
                queue, free, lease=lease, worker_id=worker_id, token=token
            )
            if not isinstance(claimed, _Contended):
                return claimed
        return await self._claim_locked(queue, free, lease=lease, worker_id=worker_id, token=token)

    async def _claim_unlocked(
        self, queue: str, free: int, *, lease: float, worker_id: str, token: str
    ) -> list[Job] | _Contended | None:
        """`_claim_limited` without the lock: `_CONTENDED` when it must take the lock."""
        pool = self._require_pool()
        expected = self._limited.get(queue, Limits())
        with self._guard():
            async with pool.acquire() as conn:
                turns = await self._read_turns(conn, queue, free, expected)
                settled = self._settle(queue, turns)
                if settled is not _GO_ON:
                    return settled
                if turns.limits_read != expected or turns.dead:
                    return _CONTENDED
                if not turns.chosen and not turns.written:
                    return []
                return await self._write_claim(
                    conn, queue, turns, lease=lease, worker_id=worker_id, token=token, cas=True
                )

    async def _claim_locked(
        self, queue: str, free: int, *, lease: float, worker_id: str, token: str
    ) -> list[Job] | None:
        """`_claim_limited` in a transaction that locks the queue's row in the limits table
        first (a held queue without limits has one too). Round trips: the BEGIN with the
        lock, a read (more only when many keys are blocked), the claim and the COMMIT."""
        pool = self._require_pool()
        # The queue as an SQL literal: the lock goes with the BEGIN as one simple query, which
        # takes no parameters. Queue names are [A-Za-z0-9_.:-]; quotes are doubled all the same.
        literal = "'" + queue.replace("'", "''") + "'"
        begin = "BEGIN; " + (f"{SET_LOCAL}; " if self._tuned else "")
        begin += self._sql["limited_lock"].replace("$1", literal)
        with self._guard():
            async with pool.acquire() as conn:
                await conn.execute(begin)
                try:
                    expected = self._limited.get(queue, Limits())
                    while True:
                        turns = await self._read_turns(conn, queue, free, expected)
                        settled = self._settle(queue, turns)
                        if settled is not _GO_ON or turns.limits_read == expected:
                            break
                        expected = turns.limits_read  # changed: read again under the new ones
                    if settled is not _GO_ON:
                        claimed: list[Job] | _Contended | None = settled
                    elif not turns.chosen and not turns.written and not turns.dead:
                        claimed = []
                    else:
                        claimed = await self._write_claim(
                            conn, queue, turns, lease=lease, worker_id=worker_id, token=token
                        )
                except BaseException:
                    if not conn.is_closed():
                        with contextlib.suppress(Exception):
                            await conn.execute("ROLLBACK")
                    raise
                await conn.execute("COMMIT")
        # Under the lock the claim always wins its turn.
        assert not isinstance(claimed, _Contended)
        return claimed

    def _settle(self, queue: str, turns: _Turns) -> list[Job] | _Contended | None:
        """What a first read alone decides: None when the queue has neither limits nor a
        hold now, [] when it is paused; else `_GO_ON`."""
        if not turns.listed or (turns.limits_text is None and not turns.held):
            self._limited.pop(queue, None)
            self._held.discard(queue)
            return None
        if turns.limits_text is not None:
            self._limited[queue] = turns.limits_read
        if turns.paused:
            return []
        return _GO_ON

    async def _write_claim(
        self,
        conn: Connection,
        queue: str,
        turns: _Turns,
        *,
        lease: float,
        worker_id: str,
        token: str,
        cas: bool = False,
    ) -> list[Job] | _Contended:
        """Claim what `choose` chose and write the key states (`limited_claim`); with `cas`,
        only if no other claim of the queue committed since the read."""
        chosen, written = turns.chosen, turns.written
        stored = _stored(turns.limits, chosen, written)
        served = [key for key in written if key != flow.QUEUE_KEY]
        rows = await conn.fetch(
            self._sql["limited_claim"],
            queue,
            [candidate.seq for candidate in chosen],
            lease,
            worker_id,
            token,
            list(stored),
            [state.window for state in stored.values()],
            [state.started for state in stored.values()],
            [state.served_at for state in stored.values()],
            turns.started_at,
            [] if cas else turns.dead,
            turns.version if cas else None,
            turns.limits_text,
            served,
            turns.now,
        )
        if not rows[0]["won"]:
            return _CONTENDED
        order = {candidate.job_id: rank for rank, candidate in enumerate(chosen)}
        claimed = [row for row in rows if row["id"] is not None]
        return [job_from_row(row) for row in sorted(claimed, key=lambda row: order[row["id"]])]

    async def _read_turns(self, conn: Connection, queue: str, free: int, limits: Limits) -> _Turns:
        """Read keys in turn order, batch after batch, until `choose` is decided."""
        per_key = [free, limits.per_key, limits.key_rate, 1 if limits.ordered else None]
        turns = _Turns(limits, free)
        cursor: tuple[float, str] = (-1.0, "")
        batch = max(2 * free, MIN_TURN_BATCH)
        first = True
        while True:
            read = await conn.fetchrow(
                self._sql["limited_read"],
                queue,
                free if first else 0,
                limits.ordered,
                min(n for n in per_key if n is not None),
                batch,
                *cursor,
                first,
                limits.key_rate is not None,
            )
            assert read is not None
            turns.add(read, first=first)
            if first and (not turns.listed or turns.paused):
                return turns
            keys = read["turn_keys"] or ()
            if keys:
                cursor = (read["turn_served"][-1], keys[-1])
            if turns.decided(cursor, exhausted=len(keys) < batch):
                return turns
            first = False
            batch *= 2


class _Contended:
    """The answer of a claim without the lock that must be made again under it."""


_CONTENDED = _Contended()
_GO_ON = _Contended()
"""What `_settle` says when the read decides nothing by itself."""


class _Turns:
    """What one limited claim has read so far, batch after batch of keys in turn order, and
    what `flow.choose` makes of it."""

    def __init__(self, limits: Limits, free: int) -> None:
        self.limits = limits
        self.free = free
        self.candidates: list[flow.Candidate] = []
        self.states: dict[str, flow.KeyState] = {}
        self.dead: list[str] = []
        self.chosen: list[flow.Candidate] = []
        self.written: dict[str, flow.KeyState] = {}
        self.now = 0.0
        self.started_at: datetime | None = None
        self.running = 0
        self.running_by_key: dict[str, int] = {}
        self.listed = False
        self.limits_text: str | None = None
        self.version = 0
        self.held = False
        self.paused = False

    @property
    def limits_read(self) -> Limits:
        """The limits the first read found (none: a hold alone)."""
        return _parsed(self.limits_text)

    def add(self, read: asyncpg.Record, *, first: bool) -> None:
        """Take in one `limited_read` row."""
        if first:
            self.listed = read["listed"]
            self.limits_text = read["limits"]
            self.version = read["version"] or 0
            self.held = bool(read["held"])
            self.paused = read["paused"]
            self.now = read["now"]
            self.started_at = read["started_at"]
            self.running = read["running"]
            self.running_by_key = _pairs(read["running_keys"], read["running_counts"])
        self.candidates.extend(
            flow.Candidate(job_id, key, seq)
            for job_id, key, seq in zip(
                read["ids"] or (), read["keys"] or (), read["seqs"] or (), strict=True
            )
        )
        self.states.update(_states(read))
        self.dead.extend(read["dead"])

    def decided(self, cursor: tuple[float, str], *, exhausted: bool) -> bool:
        """Let `choose` pick from what was read; whether reading more keys could change it.

        `choose` ranks each key's n-th job by (n, served_at, key). Once the keys read so far
        (every key up to `cursor` in turn order) include `room` keys each with a job it can
        start, their first jobs outrank every job of the keys not read yet, and `choose`
        takes just those: so when it takes `room` jobs of distinct keys, all read, reading
        on would not change its answer. The keyless jobs, read first whatever their turn,
        count only if their turn comes before `cursor`.
        """
        room = self._room()
        if room <= 0:
            self.chosen, self.written = [], {}
            return True
        # Ordered: each key offered only its first unfinished job (see queries.sql).
        heads = {c.key: c.seq for c in self.candidates if c.key is not None}
        usage = flow.Usage(
            running=self.running,
            running_by_key=self.running_by_key,
            head_seq=heads if self.limits.ordered else {},
            states=self.states,
        )
        self.chosen, self.written = flow.choose(
            self.limits, self.free, self.now, self.candidates, usage
        )
        if exhausted:
            return True
        served = {flow.QUEUE_KEY if c.key is None else c.key for c in self.chosen}
        if len(served) < room:
            return False
        keyless = self.states.get(flow.QUEUE_KEY, flow.KeyState())
        return flow.QUEUE_KEY not in served or keyless.served_at <= cursor[0]

    def _room(self) -> int:
        """How many jobs `choose` may take at most (its first step)."""
        state = self.states.get(flow.QUEUE_KEY)
        return flow.queue_room(self.limits, self.free, self.now, self.running, state)


@functools.lru_cache(maxsize=256)
def _parsed(text: str | None) -> Limits:
    """`Limits` from their stored JSON text (None: none), parsed once per text: every claim
    reads them."""
    return Limits() if text is None else Limits.from_json(text)


def _stored(
    limits: Limits, chosen: Sequence[flow.Candidate], written: dict[str, flow.KeyState]
) -> dict[str, flow.KeyState]:
    """The states of `written` that {limit_keys} must keep (see `limited_claim`): a key's
    rate window only under a `key_rate`, the queue's under a `rate` or when a keyless job
    moved its turn. A keyed key's turn is kept in {limit_ready}."""
    queue_row = limits.rate is not None or any(candidate.key is None for candidate in chosen)
    key_rows = limits.key_rate is not None
    return {
        key: state
        for key, state in written.items()
        if (queue_row if key == flow.QUEUE_KEY else key_rows)
    }


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

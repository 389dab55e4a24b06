"""The claim rule of a queue with `Limits`, decided once: backends read, `choose` picks."""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from ..limits import Limits, LimitUsage

QUEUE_KEY = ""
"""The state row of the queue itself (its rate window and hold), and of its keyless jobs'
turn in the rotation; no job's `limit_key` is empty, so it never collides with one."""


class Candidate(NamedTuple):
    """A claimable job of a limited queue, as `choose` needs it.

    This and `KeyState` are named tuples: a limited claim makes dozens of each, and a tuple
    is built several times faster than a frozen dataclass."""

    job_id: str
    key: str | None
    seq: int


class KeyState(NamedTuple):
    """The stored state of one key of a queue (or of the queue, for `QUEUE_KEY`)."""

    window: float = 0.0
    """Start of the rate window `started` counts in (epoch seconds)."""
    started: int = 0
    held_until: float = 0.0
    served_at: float = 0.0
    """When the key last had a job claimed; 0 when never."""


@dataclass(frozen=True, slots=True)
class Usage:
    """What a backend reads, inside its claim, about one limited queue."""

    running: int
    running_by_key: Mapping[str, int] = field(default_factory=dict)
    head_seq: Mapping[str, int] = field(default_factory=dict)
    """Only for `ordered` limits: per key, the least seq of its pending, failed or running jobs."""
    states: Mapping[str, KeyState] = field(default_factory=dict)


def window_start(limits: Limits, now: float) -> float:
    """The start of the fixed rate window holding `now`: a multiple of `period`."""
    return math.floor(now / limits.period) * limits.period


def current(state: KeyState | None, window: float) -> KeyState:
    """`state` with its start count reset if it belongs to an earlier window."""
    if state is None:
        return KeyState(window=window)
    if state.window != window:
        return KeyState(window, 0, state.held_until, state.served_at)
    return state


def forgettable(limits: Limits, state: KeyState, now: float) -> bool:
    """Whether a key's state may go once the key has no waiting or running job: no hold of it
    lasts and no rate window of it still counts. A key that comes back then takes its turn
    as a new key does (its `served_at` is gone). The backends' SQL and Lua say the same."""
    return state.held_until <= now and (state.started == 0 or state.window + limits.period <= now)


def queue_room(limits: Limits, free: int, now: float, running: int, state: KeyState | None) -> int:
    """How many jobs the queue's own limits, hold and rate window (its `state`) let start
    now, at most `free` (0 or less: none). The first step of `choose`."""
    queue_state = current(state, window_start(limits, now))
    if queue_state.held_until > now:
        return 0
    room = free
    if limits.concurrency is not None:
        room = min(room, limits.concurrency - running)
    if limits.rate is not None:
        room = min(room, limits.rate - queue_state.started)
    return room


def choose(
    limits: Limits, free: int, now: float, candidates: Sequence[Candidate], usage: Usage
) -> tuple[list[Candidate], dict[str, KeyState]]:
    """The candidates to claim, in the order chosen, and the state rows to write back.

    `candidates` come in the queue's claim order (priority, then due time, then seq). Each
    key (the keyless jobs together count as one, for turns only) offers its jobs in that
    order, as many as its own limits leave; then keys take turns, least recently served
    first (ties, such as keys never served, by key), one job per turn, until `free` or the
    queue's limits are used up. Ties go by key so that a backend can read keys in that
    order from an index and stop after `free` of them.

    PostgreSQL (migration 14's `claim_limited`) and Redis (claim_limited.lua) apply this rule
    inside the server, so that a claim is one round trip: keep them in step with it.
    """
    window = window_start(limits, now)
    queue_state = current(usage.states.get(QUEUE_KEY), window)
    room = queue_room(limits, free, now, usage.running, queue_state)
    if room <= 0:
        return [], {}

    offers: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        offers.setdefault(QUEUE_KEY if candidate.key is None else candidate.key, []).append(
            candidate
        )
    states = {QUEUE_KEY: queue_state}
    # Each key offers at most `room` jobs, so ranking costs O(candidates x log room).
    ranked: list[tuple[int, float, str, Candidate]] = []
    for key, offered in offers.items():
        if key != QUEUE_KEY:
            states[key] = state = current(usage.states.get(key), window)
            offered = startable(limits, key, offered, state, now, usage)
        served_at = states[key].served_at
        ranked.extend(
            (turn, served_at, key, candidate) for turn, candidate in enumerate(offered[:room])
        )
    chosen = [entry[3] for entry in heapq.nsmallest(room, ranked, key=lambda e: e[:3])]

    # Starts are counted only while a rate applies to them (so a backend writes no count
    # for a queue without rates): a rate set during a window counts from then on.
    key_counted = limits.key_rate is not None
    written: dict[str, KeyState] = {}
    for candidate in chosen:
        key = QUEUE_KEY if candidate.key is None else candidate.key
        state = written.get(key, states[key])
        started = state.started + (key_counted and key != QUEUE_KEY)
        written[key] = KeyState(state.window, started, state.held_until, now)
    if chosen:
        # The queue's row counts every start, keyed or not, for `rate`; its `served_at` is
        # the keyless jobs' turn, moved only when one of them was served.
        queue_row = written.get(QUEUE_KEY, queue_state)
        started = queue_state.started + (len(chosen) if limits.rate is not None else 0)
        written[QUEUE_KEY] = KeyState(
            queue_row.window, started, queue_row.held_until, queue_row.served_at
        )
    return chosen, written


def startable(
    limits: Limits,
    key: str,
    offered: list[Candidate],
    state: KeyState,
    now: float,
    usage: Usage,
) -> list[Candidate]:
    """Those of `key`'s offered jobs its own limits let start now, in order."""
    if state.held_until > now:
        return []
    running = usage.running_by_key.get(key, 0)
    if limits.ordered:
        # Only the key's first unfinished job may run, and only when none of its jobs runs.
        head = usage.head_seq.get(key)
        offered = [c for c in offered if c.seq == head] if running == 0 else []
    room = len(offered)
    if limits.per_key is not None:
        room = min(room, limits.per_key - running)
    if limits.key_rate is not None:
        room = min(room, limits.key_rate - state.started)
    return offered[: max(room, 0)]


def report(limits: Limits | None, now: float, usage: Usage, busiest: int = 100) -> LimitUsage:
    """What `Backend.limit_usage` returns, from the usage a backend read (every key's state)."""
    queue_state = usage.states.get(QUEUE_KEY, KeyState())
    rated = limits is not None and limits.rate is not None
    window = window_start(limits, now) if limits is not None else 0.0
    started = current(queue_state, window).started if rated else 0
    held_keys = {
        key: _utc(state.held_until)
        for key, state in sorted(usage.states.items())
        if key != QUEUE_KEY and state.held_until > now
    }
    top = sorted(usage.running_by_key.items(), key=lambda item: (-item[1], item[0]))[:busiest]
    return LimitUsage(
        limits=limits,
        running=usage.running,
        started_in_window=started,
        window_ends_at=_utc(window + limits.period) if rated and limits is not None else None,
        held_until=_utc(queue_state.held_until) if queue_state.held_until > now else None,
        held_keys=held_keys,
        running_by_key=dict(top),
    )


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)

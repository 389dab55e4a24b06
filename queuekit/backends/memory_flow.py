"""The memory backend's flow control: its queues' limits and key states, read as `flow` needs."""

from __future__ import annotations

import abc
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..backend import Backend
from ..job import CLAIMABLE_STATUSES, JobStatus
from ..limits import Limits, LimitUsage
from . import flow

Record = dict[str, Any]
UNFINISHED = CLAIMABLE_STATUSES | {JobStatus.RUNNING}


class MemoryFlow:
    """Limits by queue and key states by (queue, key), applied with `flow.choose`."""

    def __init__(self) -> None:
        self.limits: dict[str, Limits] = {}
        self._states: dict[str, dict[str, flow.KeyState]] = {}

    def choose(
        self,
        queue: str,
        free: int,
        now: float,
        candidates: Sequence[flow.Candidate],
        records: Iterable[Record],
    ) -> list[flow.Candidate]:
        """The candidates of a limited queue to claim now; their keys' states are updated,
        and those of keys with nothing left to keep are dropped (`flow.forgettable`)."""
        limits = self.limits.get(queue, Limits())
        open_keys: set[str] = set()
        usage = self._usage(queue, records, limits.ordered, open_keys)
        chosen, written = flow.choose(limits, free, now, candidates, usage)
        states = self._states.setdefault(queue, {})
        states.update(written)
        for key in [key for key, state in states.items() if key != flow.QUEUE_KEY]:
            if key not in open_keys and flow.forgettable(limits, states[key], now):
                del states[key]
        return chosen

    def applies(self, queue: str, now: float) -> bool:
        """Whether claims of `queue` go through `choose`: it has limits, or a key is held.
        A queue with neither keeps no states: without limits they count nothing."""
        if queue in self.limits:
            return True
        if any(state.held_until > now for state in self._states.get(queue, {}).values()):
            return True
        self._states.pop(queue, None)
        return False

    def hold(self, queue: str, key: str | None, until: float) -> None:
        states = self._states.setdefault(queue, {})
        key = flow.QUEUE_KEY if key is None else key
        state = states.get(key, flow.KeyState())
        states[key] = state._replace(held_until=max(state.held_until, until))

    def report(self, queue: str, now: float, records: Iterable[Record]) -> LimitUsage:
        return flow.report(self.limits.get(queue), now, self._usage(queue, records, False))

    def _usage(
        self,
        queue: str,
        records: Iterable[Record],
        ordered: bool,
        open_keys: set[str] | None = None,
    ) -> flow.Usage:
        """What `flow` reads of `queue`; the keys with unfinished jobs go in `open_keys`."""
        running: Counter[str | None] = Counter()
        heads: dict[str, int] = {}
        for record in records:
            if record["queue"] != queue or record["status"] not in UNFINISHED:
                continue
            key = record["limit_key"]
            if open_keys is not None and key is not None:
                open_keys.add(key)
            if record["status"] == JobStatus.RUNNING:
                running[key] += 1
            if ordered and key is not None:
                heads[key] = min(heads.get(key, record["seq"]), record["seq"])
        by_key: Mapping[str, int] = {k: n for k, n in running.items() if k is not None}
        return flow.Usage(
            running=sum(running.values()),
            running_by_key=by_key,
            head_seq=heads,
            states=dict(self._states.get(queue, {})),
        )


class MemoryLimits(Backend):
    """`set_limits`, `get_limits`, `hold` and `limit_usage` for `MemoryBackend`."""

    _flow: MemoryFlow
    _jobs: dict[str, Record]

    @abc.abstractmethod
    def _now(self) -> float: ...

    @abc.abstractmethod
    def _wake(self, queue: str) -> None:
        """Wake the workers waiting for `queue`: a limit may have let more of its jobs run."""

    async def set_limits(self, queue: str, limits: Limits | None) -> None:
        if limits is None:
            self._flow.limits.pop(queue, None)
        else:
            self._flow.limits[queue] = limits
        self._wake(queue)

    async def get_limits(self) -> dict[str, Limits]:
        return dict(self._flow.limits)

    async def hold(self, queue: str, key: str | None, seconds: float) -> None:
        self._flow.hold(queue, key, self._now() + seconds)

    async def limit_usage(self, queue: str) -> LimitUsage:
        return self._flow.report(queue, self._now(), self._jobs.values())

"""The memory backend's flow control: its queues' limits and key states, read as `flow` needs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

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
        """The candidates of a limited queue to claim now; their keys' states are updated."""
        limits = self.limits.get(queue, Limits())
        chosen, written = flow.choose(
            limits, free, now, candidates, self._usage(queue, records, limits.ordered)
        )
        self._states.setdefault(queue, {}).update(written)
        return chosen

    def applies(self, queue: str, now: float) -> bool:
        """Whether claims of `queue` go through `choose`: it has limits, or a key is held."""
        if queue in self.limits:
            return True
        return any(state.held_until > now for state in self._states.get(queue, {}).values())

    def hold(self, queue: str, key: str | None, until: float) -> None:
        states = self._states.setdefault(queue, {})
        key = flow.QUEUE_KEY if key is None else key
        state = states.get(key, flow.KeyState())
        states[key] = state._replace(held_until=max(state.held_until, until))

    def report(self, queue: str, now: float, records: Iterable[Record]) -> LimitUsage:
        return flow.report(self.limits.get(queue), now, self._usage(queue, records, False))

    def _usage(self, queue: str, records: Iterable[Record], ordered: bool) -> flow.Usage:
        running: Counter[str | None] = Counter()
        heads: dict[str, int] = {}
        for record in records:
            if record["queue"] != queue or record["status"] not in UNFINISHED:
                continue
            key = record["limit_key"]
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

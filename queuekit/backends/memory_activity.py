"""`MemoryActivity`: `MemoryBackend`'s activity by minute, in a dict on its clock."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ..activity import DEPTH_CAP, ActivityCounts, Minute
from ..backend import Backend
from ..job import CLAIMABLE_STATUSES


class MemoryActivity(Backend):
    """The per-queue minutes in `_activity`, by (queue, minute start); `MemoryBackend` gives
    the clock and the job records."""

    _activity: dict[tuple[str, float], Minute]
    _jobs: dict[str, dict[str, Any]]

    @abc.abstractmethod
    def _now(self) -> float:
        """The backend's clock, in epoch seconds, never stepping back."""

    async def add_activity(
        self, counts: Sequence[ActivityCounts], *, keep: float, depth_cap: int = DEPTH_CAP
    ) -> None:
        now = self._now()
        minute = now // 60 * 60
        queues = {entry.queue for entry in counts}
        for queue, at in list(self._activity):
            if queue in queues and at < now - keep:
                del self._activity[queue, at]
        for entry in counts:
            known = self._activity.get((entry.queue, minute))
            if known is None:
                depth = self._depth(entry.queue, now, depth_cap)
                self._activity[entry.queue, minute] = entry.at(_utc(minute), depth)
            else:
                added = (known.counts + entry).at(known.at, known.depth)
                self._activity[entry.queue, minute] = added

    def _depth(self, queue: str, now: float, cap: int) -> int:
        """The queue's ready jobs at `now`, counting at most `cap`."""
        depth = 0
        for record in self._jobs.values():
            if depth >= cap:
                break
            depth += (
                record["queue"] == queue
                and record["status"] in CLAIMABLE_STATUSES
                and record["scheduled_at"] <= now
            )
        return depth

    async def activity(self, queue: str, minutes: int) -> list[Minute]:
        since = self._now() - 60 * minutes
        return [
            entry
            for (name, at), entry in sorted(self._activity.items(), key=lambda item: item[0])
            if name == queue and at > since
        ]


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)

"""`MemoryActivity`: `MemoryBackend`'s activity by minute, in a dict on its clock."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import UTC, datetime

from ..activity import ActivityCounts, Minute
from ..backend import Backend


class MemoryActivity(Backend):
    """The per-queue minutes in `_activity`, by (queue, minute start); `MemoryBackend` gives
    the clock."""

    _activity: dict[tuple[str, float], ActivityCounts]

    @abc.abstractmethod
    def _now(self) -> float:
        """The backend's clock, in epoch seconds, never stepping back."""

    async def add_activity(self, counts: Sequence[ActivityCounts], *, keep: float) -> None:
        now = self._now()
        minute = now // 60 * 60
        queues = {entry.queue for entry in counts}
        for queue, at in list(self._activity):
            if queue in queues and at < now - keep:
                del self._activity[queue, at]
        for entry in counts:
            known = self._activity.get((entry.queue, minute))
            self._activity[entry.queue, minute] = entry if known is None else known + entry

    async def activity(self, queue: str, minutes: int) -> list[Minute]:
        since = self._now() - 60 * minutes
        return [
            entry.at(datetime.fromtimestamp(at, UTC))
            for (name, at), entry in sorted(self._activity.items())
            if name == queue and at > since
        ]

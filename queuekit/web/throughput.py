"""Finished-job counts per queue sampled over time, kept in memory for the dashboard's sparkline."""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import dataclass

from ..stats import QueueStats

SAMPLE_EVERY = 5.0
"""Seconds between two throughput samples of one queue."""
SAMPLE_WINDOW = 600.0
"""The sparkline shows the last ten minutes."""


@dataclass(frozen=True)
class Sparkline:
    """An SVG polyline's points and its accessible label."""

    points: str
    label: str
    width: int
    height: int


class Throughput:
    """Samples of `completed + dead` per queue; rates between consecutive samples."""

    def __init__(self) -> None:
        self.samples: dict[str, deque[tuple[float, int]]] = {}

    def record(self, stats: QueueStats, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        samples = self.samples.setdefault(stats.queue, deque())
        if samples and now - samples[-1][0] < SAMPLE_EVERY:
            return
        samples.append((now, stats.completed + stats.dead))
        while samples and now - samples[0][0] > SAMPLE_WINDOW:
            samples.popleft()

    def rates(self, queue: str) -> list[float]:
        """Jobs finished per second between consecutive samples (never negative)."""
        points = list(self.samples.get(queue, ()))
        return [
            max(0.0, (b[1] - a[1]) / (b[0] - a[0]))
            for a, b in itertools.pairwise(points)
            if b[0] > a[0]
        ]

    def sparkline(self, queue: str, width: int = 120, height: int = 24) -> Sparkline | None:
        """The line to draw, or None while there are fewer than two rates."""
        rates = self.rates(queue)
        if len(rates) < 2:
            return None
        top = max(rates) or 1.0
        step = width / (len(rates) - 1)
        points = " ".join(
            f"{i * step:.1f},{height - 2 - (r / top) * (height - 4):.1f}"
            for i, r in enumerate(rates)
        )
        label = f"{rates[-1] * 60:.0f} jobs/min now, peak {top * 60:.0f}/min"
        return Sparkline(points, label, width, height)

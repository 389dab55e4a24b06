"""SVG charts of a queue's activity by minute: the geometry, for the templates to draw."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict

from ..activity import BUCKET_BOUNDS, DEPTH_CAP, Minute, depths
from .times import duration

WIDTH, HEIGHT = 600, 150
"""The chart's drawing area (SVG user units); the page scales it to its width."""
LEFT, BOTTOM, TOP = 48, 18, 6
"""Room for the value labels on the left, the time labels below, and the top line's width."""
SPARK_WIDTH, SPARK_HEIGHT = 120, 24
FASTEST = BUCKET_BOUNDS[0]
"""The least time the times chart shows; anything quicker sits on its bottom line."""


@dataclass(frozen=True)
class Line:
    """One series: its name, its CSS class (which gives its colour) and its points."""

    name: str
    kind: str
    points: str
    summary: str
    """What the legend says of it (its total or its latest value)."""


@dataclass(frozen=True)
class Chart:
    """A chart of `minutes` minutes up to `end`: lines, axis labels, and its accessible label."""

    title: str
    label: str
    lines: list[Line]
    top: str
    """The value of the top line, as people read it."""
    bottom: str
    start: str
    end: str
    start_at: str
    """The first and last minutes' starts (ISO 8601, UTC): the page shows them in the viewer's
    time zone, `start` and `end` (UTC) until it does."""
    end_at: str
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    base: int = HEIGHT - BOTTOM


@dataclass(frozen=True)
class Sparkline:
    """A small unlabelled line and the sentence that describes it."""

    points: str
    label: str
    width: int = SPARK_WIDTH
    height: int = SPARK_HEIGHT


def slots(minutes: Sequence[Minute], end: datetime, span: int) -> list[Minute | None]:
    """The `span` minutes up to the one holding `end`, oldest first; None where none was kept."""
    last = end.replace(second=0, microsecond=0)
    by_start = {minute.at: minute for minute in minutes}
    return [by_start.get(last - timedelta(minutes=span - 1 - i)) for i in range(span)]


def jobs_chart(minutes: Sequence[Minute], end: datetime, span: int) -> Chart:
    """Jobs enqueued, completed, failed and dead per minute."""
    filled = slots(minutes, end, span)
    fields: list[tuple[str, str, Callable[[Minute], int]]] = [
        ("enqueued", "enqueued", lambda m: m.enqueued),
        ("completed", "completed", lambda m: m.completed),
        ("failed (retried)", "failed", lambda m: m.failed),
        ("dead", "dead", lambda m: m.dead),
    ]
    series = {kind: [0 if m is None else value(m) for m in filled] for _, kind, value in fields}
    top = max(1, *(max(values) for values in series.values()))
    lines = [
        Line(name, kind, _points(series[kind], lambda v: v / top), f"{sum(series[kind]):,}")
        for name, kind, _ in fields
    ]
    totals = ", ".join(f"{line.summary} {line.name}" for line in lines)
    return Chart(
        title="Jobs per minute",
        label=f"Jobs per minute over the last {_span(span)}: {totals}",
        lines=lines,
        top=f"{top:,}/min",
        bottom="0",
        **_ends(end, span),
    )


def times_chart(minutes: Sequence[Minute], end: datetime, span: int) -> Chart:
    """The median and 95th percentile of the wait (from due to start) and run times, on a
    logarithmic scale from `FASTEST` to the longest shown."""
    filled = slots(minutes, end, span)
    fields: list[tuple[str, str, Callable[[Minute], float | None]]] = [
        ("wait p50", "wait", lambda m: m.wait_p50),
        ("wait p95", "wait p95", lambda m: m.wait_p95),
        ("run p50", "run", lambda m: m.run_p50),
        ("run p95", "run p95", lambda m: m.run_p95),
    ]
    series = {kind: [None if m is None else value(m) for m in filled] for _, kind, value in fields}
    known = [v for values in series.values() for v in values if v is not None]
    longest = max(FASTEST * 10, *known) if known else FASTEST * 10
    scale = math.log(longest / FASTEST)

    def height(value: float) -> float:
        return math.log(max(value, FASTEST) / FASTEST) / scale

    lines = []
    for name, kind, _ in fields:
        latest = next((v for v in reversed(series[kind]) if v is not None), None)
        summary = "—" if latest is None else duration(latest)
        lines.append(Line(name, kind, _points(series[kind], height), summary))
    return Chart(
        title="Wait and run times",
        label=f"Wait and run times over the last {_span(span)}, latest: "
        + ", ".join(f"{line.name} {line.summary}" for line in lines),
        lines=lines,
        top=duration(longest),
        bottom=f"≤{duration(FASTEST)}",
        **_ends(end, span),
    )


def depth_chart(minutes: Sequence[Minute], end: datetime, span: int) -> Chart:
    """The queue's depth (ready jobs) as each minute's first write sampled it; a minute without
    a sample carries the last one forward, as depth changes only with activity."""
    series = depths(slots(minutes, end, span))
    top = max([1, *(value for value in series if value is not None)])
    latest = next((value for value in reversed(series) if value is not None), None)
    summary = "—" if latest is None else _depth(latest)
    line = Line("ready jobs", "depth", _points(series, lambda v: v / top), summary)
    return Chart(
        title="Queue depth",
        label=f"Ready jobs, sampled once a minute, over the last {_span(span)}: latest {summary}",
        lines=[line],
        top=_depth(top),
        bottom="0",
        **_ends(end, span),
    )


def sparkline(minutes: Sequence[Minute], end: datetime, span: int = 60) -> Sparkline:
    """Jobs finished (completed or dead) per minute, for the queues table."""
    finished = [0 if m is None else m.completed + m.dead for m in slots(minutes, end, span)]
    top = max(1, *finished)
    step = SPARK_WIDTH / max(span - 1, 1)
    points = " ".join(
        f"{i * step:.1f},{SPARK_HEIGHT - 1 - count / top * (SPARK_HEIGHT - 2):.1f}"
        for i, count in enumerate(finished)
    )
    label = (
        f"{sum(finished):,} finished in the last {_span(span)}, at most {max(finished):,} a minute"
    )
    return Sparkline(points, label)


def _points(values: Sequence[float | None], height: Callable[[float], float]) -> str:
    """Polyline points for values spread over the width, each at `height(value)` (0 to 1); a
    lone point twice, so that its round line cap shows it as a dot."""
    base, room = HEIGHT - BOTTOM, HEIGHT - BOTTOM - TOP
    step = (WIDTH - LEFT) / max(len(values) - 1, 1)
    points = [
        f"{LEFT + i * step:.1f},{base - height(value) * room:.1f}"
        for i, value in enumerate(values)
        if value is not None
    ]
    return " ".join(points * 2 if len(points) == 1 else points)


class _Ends(TypedDict):
    start: str
    end: str
    start_at: str
    end_at: str


def _ends(end: datetime, span: int) -> _Ends:
    """The time labels of a chart of the `span` minutes up to `end`."""
    last = end.replace(second=0, microsecond=0)
    first = last - timedelta(minutes=span - 1)
    return {
        "start": _clock(first),
        "end": _clock(last),
        "start_at": first.isoformat(),
        "end_at": last.isoformat(),
    }


def _clock(moment: datetime) -> str:
    return moment.strftime("%H:%M")


def _depth(value: int) -> str:
    """A depth as read: the cap with a plus, since a deeper queue was counted only that far."""
    return f"{value:,}+" if value >= DEPTH_CAP else f"{value:,}"


def _span(minutes: int) -> str:
    return f"{minutes // 60} hours" if minutes % 60 == 0 and minutes > 60 else f"{minutes} minutes"

"""Times and durations as people read them, for the dashboard's pages and charts.

Absolute times go out as `<time datetime="..." data-local="moment">` with their UTC text,
which static/dashboard.js rewrites into the viewer's time zone; relative ones (`ago`) carry
`data-local="ago"`, and the script keeps them fresh.
"""

from __future__ import annotations

from datetime import UTC, datetime

from markupsafe import Markup

from ..job import Job, JobStatus


def utc(value: datetime | None) -> str:
    """A time to the second in UTC, as the CLI prints it: the text before the script runs."""
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def moment(value: datetime | None) -> Markup:
    """A time to the second, as a `<time>` the script shows in the viewer's time zone."""
    if value is None:
        return Markup("—")
    return Markup('<time datetime="{}" data-local="moment">{}</time>').format(
        value.astimezone(UTC).isoformat(), utc(value)
    )


def ago(value: datetime | None) -> str:
    """How long ago `value` was ("3 min ago"), or how soon it comes ("in 2 h")."""
    if value is None:
        return "—"
    seconds = (datetime.now(UTC) - value).total_seconds()
    span = _rounded(abs(seconds))
    return f"{span} ago" if seconds >= 0 else f"in {span}"


def _rounded(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def ran(job: Job) -> str:
    """How long the job's latest attempt ran, or has run so far; "" if it never started."""
    if job.started_at is None:
        return ""
    if job.status == JobStatus.RUNNING:
        return f"{duration((datetime.now(UTC) - job.started_at).total_seconds())} so far"
    if job.finished_at is None or job.finished_at < job.started_at:
        return ""
    return duration((job.finished_at - job.started_at).total_seconds())


def duration(seconds: float) -> str:
    """A duration to a sensible precision: 7.5 ms, 345 ms, 1.25 s, 12.3 s, 3 min 4 s, 2 h 5 min."""
    if seconds < 1:
        return f"{seconds * 1000:.3g} ms"
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    return f"{minutes // 60} h {minutes % 60} min"

"""What `list_jobs` takes: the checks of its filters, and the one rule of a search by error
text and creation time."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .errors import InvalidOptionError
from .validation import CURSOR_PATTERN, check_name

MAX_PAGE_SIZE = 1000
MAX_ERROR_SEARCH = 200
"""The longest error text `list_jobs` searches for, in characters."""
AGO = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhd]?)")
"""A duration before now as an operator types it: 90, 90s, 15m, 12h, 7d."""
SECONDS_PER = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def check_page(queue: object, type: object, limit: object, cursor: object) -> None:
    """Refuse what `list_jobs` cannot take for a queue, a type, a page size or a cursor."""
    if queue is not None:
        check_name(queue)
    if type is not None:
        check_name(type, "task type")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidOptionError(f"limit must be from 1 to {MAX_PAGE_SIZE}")
    if cursor is not None and not (isinstance(cursor, str) and CURSOR_PATTERN.fullmatch(cursor)):
        raise InvalidOptionError(f"bad cursor {cursor!r}: pass a page's next_cursor back")


def instant_of(text: str, now: datetime) -> datetime:
    """A point in time an operator typed (the CLI's --since, the dashboard's search): an ISO
    8601 date and time, in UTC unless it names a zone, or a duration before `now`."""
    cleaned = text.strip()
    try:
        if ago := AGO.fullmatch(cleaned.lower()):
            return now - timedelta(seconds=float(ago[1]) * SECONDS_PER[ago[2]])
        parsed = datetime.fromisoformat(cleaned)
    except (ValueError, OverflowError):
        raise InvalidOptionError(
            f"{text!r} is not a time: give an ISO 8601 date and time (UTC unless it names a "
            "zone), or a duration ago such as 90s, 15m, 12h or 7d"
        ) from None
    return parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=UTC)


def fold(text: str) -> str:
    """`text` with ASCII letters in lower case, the case every backend ignores when matching
    error text (SQLite's `lower`, Lua's `string.lower`, a `translate` on PostgreSQL): other
    characters match only themselves, alike on all four backends."""
    return text.translate(_ASCII_LOWER)


@dataclass(frozen=True, slots=True)
class JobSearch:
    """What `list_jobs` looks for beyond queue, status and type, checked."""

    error: str | None = None
    """Folded (see `fold`): a substring `last_error` holds, ASCII case ignored."""
    created_after: datetime | None = None
    """Jobs created at or after this instant."""
    created_before: datetime | None = None
    """Jobs created before this instant."""
    workflow_id: str | None = None
    """Jobs of this workflow (`Job.workflow_id`)."""
    batch_id: str | None = None
    """Jobs of this batch (`Job.batch_id`)."""

    @classmethod
    def of(
        cls,
        error: object = None,
        created_after: object = None,
        created_before: object = None,
        workflow_id: object = None,
        batch_id: object = None,
    ) -> JobSearch:
        """Checked search terms; bad ones raise `InvalidOptionError`."""
        if error is not None and (
            not isinstance(error, str) or not 1 <= len(error) <= MAX_ERROR_SEARCH
        ):
            raise InvalidOptionError(
                f"error text to search for must be 1 to {MAX_ERROR_SEARCH} characters"
            )
        return cls(
            None if error is None else fold(error),
            _instant(created_after, "created_after"),
            _instant(created_before, "created_before"),
            None if workflow_id is None else check_name(workflow_id, "workflow id"),
            None if batch_id is None else check_name(batch_id, "batch id"),
        )

    def matches(
        self,
        last_error: str | None,
        created_at: float,
        workflow_id: str | None,
        batch_id: str | None,
    ) -> bool:
        """Whether a job of this `last_error` created at `created_at` (epoch seconds) in this
        workflow and batch matches, compared as the job reads back (to the microsecond)."""
        if self.workflow_id is not None and workflow_id != self.workflow_id:
            return False
        if self.batch_id is not None and batch_id != self.batch_id:
            return False
        if self.error is not None and (last_error is None or self.error not in fold(last_error)):
            return False
        if self.created_after is None and self.created_before is None:
            return True
        created = datetime.fromtimestamp(created_at, UTC)
        return (self.created_after is None or created >= self.created_after) and (
            self.created_before is None or created < self.created_before
        )

    @property
    def any(self) -> bool:
        """Whether it looks for anything at all."""
        return self != NO_SEARCH


def _instant(value: object, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidOptionError(f"{name} must be an aware datetime (with a time zone)")
    try:
        return value.astimezone(UTC)  # as every backend compares it, within UTC's years
    except OverflowError:
        raise InvalidOptionError(f"{name} is out of range") from None


NO_SEARCH = JobSearch()

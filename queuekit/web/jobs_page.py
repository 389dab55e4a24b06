"""The dashboard's jobs page: its search (filters, batch, error text, creation time, paging), its
actions on the selected jobs or on every job matching a filter, and its times for people."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from ..errors import InvalidOptionError, JobNotFoundError, JobRunningError
from ..job import TERMINAL_STATUSES, Job, JobStatus
from ..queue import REPLAYABLE, RUNNABLE, Queue
from ..search import instant_of
from ..validation import NAME_PATTERN, check_name

SEARCH_FIELDS = ("queue", "status", "type", "batch", "id", "error", "since", "until")
FILTER_FIELDS = ("queue", "status", "type")
"""What an action on every matching job goes by (the bulk operations' `JobFilter`)."""
MAX_SELECTED = 200
"""Jobs one action on a selection takes at most (a page holds far fewer)."""


@dataclass(frozen=True, slots=True)
class Action:
    """One of the jobs page's four actions."""

    done: str
    """Its past tense, for the flash message."""
    one: Callable[[Queue], Callable[[str], Awaitable[Job]]] | None
    """The `Queue` method that applies it to one job, returning it (None: `delete_job`)."""
    every: Callable[[Queue], Callable[..., Awaitable[int]]]
    """The `Queue` method that applies it to every job matching a filter, in batches."""


ACTIONS = {
    "replay": Action("replayed", lambda q: q.replay, lambda q: q.replay_all),
    "cancel": Action("cancelled", lambda q: q.cancel, lambda q: q.cancel_all),
    "run-now": Action("made due now", lambda q: q.run_now, lambda q: q.run_now_all),
    "delete": Action("deleted", None, lambda q: q.delete_all),
}


def changed(action: str, before: Job, after: Job) -> bool:
    """Whether `action` changed the job (`before` it, `after` it); else it was left alone."""
    if action == "replay":
        return before.status in REPLAYABLE and after.status == JobStatus.PENDING
    if action == "cancel":
        return before.status not in TERMINAL_STATUSES and after.status == JobStatus.CANCELLED
    return after.status in RUNNABLE and after.scheduled_at < before.scheduled_at


async def matching_jobs(queue: Queue, params: Mapping[str, str], page_size: int) -> dict[str, Any]:
    """The jobs page's context: its search as given, a page of jobs, the next page's query,
    and whether actions by filter apply (only queue, status and type are a bulk filter)."""
    search = {key: (params.get(key) or "").strip() for key in SEARCH_FIELDS}
    only_filters = not any(search[key] for key in SEARCH_FIELDS if key not in FILTER_FIELDS)
    context = {"search": search, "next_query": None, "by_filter": only_filters}
    if search["id"]:
        found = NAME_PATTERN.fullmatch(search["id"]) is not None
        try:
            jobs = [await queue.get_job(search["id"])] if found else []
        except JobNotFoundError:
            jobs = []
        return {**context, "jobs": jobs}
    for key in ("queue", "type"):
        if search[key]:
            check_name(search[key], f"{key} name")
    now = datetime.now(UTC)
    page = await queue.list_jobs(
        queue=search["queue"] or None,
        status=search["status"] or None,
        type=search["type"] or None,
        limit=page_size,
        cursor=params.get("cursor") or None,
        error=search["error"] or None,
        created_after=instant_of(search["since"], now) if search["since"] else None,
        created_before=instant_of(search["until"], now) if search["until"] else None,
        batch_id=search["batch"] or None,
    )
    if page.next_cursor is not None:
        context["next_query"] = {**_given(search), "cursor": page.next_cursor}
    return {**context, "jobs": page.jobs}


def search_query(fields: Mapping[str, Sequence[str]]) -> str:
    """The jobs page's query string for the search fields a form carried back."""
    return urlencode(_given({key: (fields.get(key) or [""])[0] for key in SEARCH_FIELDS}))


def _given(search: Mapping[str, str]) -> dict[str, str]:
    return {key: value for key, value in search.items() if value}


async def act(queue: Queue, which: str, fields: Mapping[str, Sequence[str]]) -> str:
    """Apply the form's action to the selected jobs (`which` is "selected") or to every job
    matching its filter ("matching"); the outcome, for the flash message."""
    name = (fields.get("action") or [""])[0]
    action = ACTIONS.get(name)
    if action is None:
        raise InvalidOptionError(f"no such action {name!r}")
    if which == "matching":
        where = {key: (fields.get(key) or [""])[0] or None for key in FILTER_FIELDS}
        try:
            count = await action.every(queue)(**where)
        except InvalidOptionError as exc:
            return f"nothing {action.done}: {exc}"
        described = ", ".join(f"{key} {value}" for key, value in where.items() if value)
        return f"{action.done} {count} jobs matching {described or 'no filter (every job)'}"
    ids = list(dict.fromkeys(fields.get("job") or []))
    if not ids:
        return "select some jobs first"
    if len(ids) > MAX_SELECTED:
        raise InvalidOptionError(f"select at most {MAX_SELECTED} jobs at once")
    count = sum([await _apply(queue, name, action.one, job_id) for job_id in ids])
    left = f"; {len(ids) - count} left as they were" if count < len(ids) else ""
    return f"{action.done} {count} of {len(ids)} selected jobs{left}"


async def _apply(
    queue: Queue,
    name: str,
    one: Callable[[Queue], Callable[[str], Awaitable[Job]]] | None,
    job_id: str,
) -> bool:
    """Apply action `name` to one job; whether it changed it (an unknown job is left)."""
    try:
        if one is None:
            return await queue.delete_job(job_id)
        before = await queue.get_job(job_id)
        return changed(name, before, await one(queue)(job_id))
    except (JobNotFoundError, JobRunningError):
        return False

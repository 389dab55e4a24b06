"""The enqueue options, defined once: each one's name, type, default, bounds, check and help.

`new_job`, `Queue.enqueue` and `Task.with_options` take them as `**options` typed by
`EnqueueOptions`; the `queuekit enqueue` flags and the HTTP API's request model are built from
`OPTIONS`. Every value goes through its option's `check` (the rules in `validation.py`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypedDict, Unpack

from .errors import InvalidOptionError
from .ids import new_job_id
from .job import JSON, Job, JobStatus, NewJob, OnConflict, Parent, Priority
from .validation import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_PAYLOAD_BYTES,
    MAX_ATTEMPTS_LIMIT,
    MAX_DELAY_SECONDS,
    MAX_JOB_ID_LENGTH,
    MAX_PRIORITY,
    MAX_UNIQUE_KEY_LENGTH,
    MIN_PRIORITY,
    NAME_PATTERN,
    check_debounce_key,
    check_delay,
    check_duration,
    check_expires_at,
    check_expires_in,
    check_expiry,
    check_headers,
    check_job_id,
    check_limit_key,
    check_max_attempts,
    check_name,
    check_on_conflict,
    check_parents,
    check_priority,
    check_run_at,
    check_unique_key,
    check_unique_states,
    encode_json,
)

UNIQUE_OPTIONS = ("unique_for", "unique_states", "on_conflict")
"""The options that shape a unique key's hold: they need `unique_key` or `unique_payload`."""
KEY_OPTIONS = frozenset({*UNIQUE_OPTIONS, "debounce_key", "debounce_max"})
"""The options `_check_keys` has something to say about; a job given none is not checked."""
EXPIRY_OPTIONS = frozenset({"expires_at", "expires_in"})
"""The options `check_expiry` has something to say about."""


class EnqueueOptions(TypedDict, total=False):
    """The per-job options as keyword arguments (`**options: Unpack[EnqueueOptions]`)."""

    id: str | None
    queue: str
    priority: int
    delay: float | timedelta | None
    run_at: datetime | None
    unique_key: str | None
    unique_payload: bool
    unique_for: float | timedelta | None
    unique_states: Sequence[JobStatus | str] | None
    on_conflict: OnConflict | str
    debounce_key: str | None
    debounce_max: float | timedelta | None
    max_attempts: int
    headers: Mapping[str, str] | None
    limit_key: str | None
    expires_at: datetime | None
    expires_in: float | timedelta | None
    after: Sequence[str | Job | NewJob | Parent] | None
    workflow_id: str | None
    batch_id: str | None


@dataclass(frozen=True, slots=True)
class Option:
    """One enqueue option; a `default` of None means optional (absent and None are the same).

    `type` is the value's plain type as a JSON body or a command line gives it (`delay` is
    seconds; the library also takes a `timedelta`). The bounds repeat what `check` enforces, for
    schemas and flags; `check` is the rule itself: it returns the value normalized or raises a
    `queuekit.errors.ValidationError`.
    """

    name: str
    type: Any
    default: Any
    check: Callable[[Any], Any]
    help: str
    minimum: float | None = None
    exclusive_minimum: float | None = None
    """A bound the value must exceed (where `minimum` is one it may equal)."""
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    """A regular expression the whole value matches (anchored with ^ and $)."""


def _check_flag(name: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise InvalidOptionError(f"{name} must be true or false, not {value!r}")
        return value

    return check


OPTIONS: tuple[Option, ...] = (
    Option(
        "id",
        str,
        None,
        check_job_id,
        "The job's id (default: a new time-ordered UUID).",
        min_length=1,
        max_length=MAX_JOB_ID_LENGTH,
        pattern=f"^{NAME_PATTERN.pattern}$",
    ),
    Option(
        "queue",
        str,
        "default",
        lambda value: check_name(value, "queue name"),
        "The queue to put it on.",
        pattern=f"^{NAME_PATTERN.pattern}$",
    ),
    Option(
        "priority",
        int,
        int(Priority.NORMAL),
        check_priority,
        f"Higher runs first: {MIN_PRIORITY} to {MAX_PRIORITY} (LOW=0, NORMAL=10, HIGH=20, "
        "CRITICAL=30).",
        minimum=MIN_PRIORITY,
        maximum=MAX_PRIORITY,
    ),
    Option(
        "delay",
        float,
        None,
        check_delay,
        "Seconds before it may run (not with run_at).",
        minimum=0,
        maximum=MAX_DELAY_SECONDS,
    ),
    Option(
        "run_at",
        datetime,
        None,
        check_run_at,
        "When it may run: a timezone-aware time within 100 years (not with delay).",
    ),
    Option(
        "unique_key",
        str,
        None,
        check_unique_key,
        "While a job of the queue with this key is waiting, pending, running or failed (and "
        "after it ends in one of unique_states), enqueueing returns that job instead.",
        min_length=1,
        max_length=MAX_UNIQUE_KEY_LENGTH,
    ),
    Option(
        "unique_payload",
        bool,
        False,
        _check_flag("unique_payload"),
        "Make the unique key from the payload: the task type (or unique_key) and a digest of "
        "the payload, so a job with the same payload is not stored twice.",
    ),
    Option(
        "unique_for",
        float,
        None,
        check_duration("unique_for"),
        "Seconds from the enqueue during which a finished job keeps its unique key (in "
        "unique_states, completed by default): once per key per period.",
        exclusive_minimum=0,
        maximum=MAX_DELAY_SECONDS,
    ),
    Option(
        "unique_states",
        list[str],
        None,
        check_unique_states,
        "The finished states (completed, dead, cancelled) in which a job keeps its unique key, "
        "for unique_for seconds or while it is stored.",
    ),
    Option(
        "on_conflict",
        str,
        OnConflict.RETURN.value,
        check_on_conflict,
        "When the job holding the unique key is found: return it (return), or give it this "
        "payload and schedule if it has not started or waits for a retry (replace).",
        pattern=f"^({'|'.join(OnConflict)})$",
    ),
    Option(
        "debounce_key",
        str,
        None,
        check_debounce_key,
        "While a job of the queue with this key has not started, enqueueing gives it this "
        "payload and pushes its start back by this delay instead of storing a job.",
        min_length=1,
        max_length=MAX_UNIQUE_KEY_LENGTH,
    ),
    Option(
        "debounce_max",
        float,
        None,
        check_duration("debounce_max"),
        "Seconds after its first enqueue by which a debounced job starts, however often it is "
        "pushed back.",
        exclusive_minimum=0,
        maximum=MAX_DELAY_SECONDS,
    ),
    Option(
        "max_attempts",
        int,
        DEFAULT_MAX_ATTEMPTS,
        check_max_attempts,
        "Attempts before it is dead.",
        minimum=1,
        maximum=MAX_ATTEMPTS_LIMIT,
    ),
    Option(
        "headers",
        dict[str, str],
        None,
        check_headers,
        "String metadata beside the payload: non-empty keys, at most 8 KiB as JSON.",
    ),
    Option(
        "limit_key",
        str,
        None,
        check_limit_key,
        "The key the queue's per-key limits count it under (a tenant, an account, an order).",
        min_length=1,
        max_length=MAX_UNIQUE_KEY_LENGTH,
    ),
    Option(
        "expires_at",
        datetime,
        None,
        check_expires_at,
        "If it has not started by then (a timezone-aware time), it is cancelled as expired "
        "(not with expires_in).",
    ),
    Option(
        "expires_in",
        float,
        None,
        check_expires_in,
        "Seconds after the enqueue at which it is cancelled as expired if not started by "
        "then; more than delay (not with expires_at).",
        exclusive_minimum=0,
        maximum=MAX_DELAY_SECONDS,
    ),
    Option(
        "after",
        list[str],
        None,
        check_parents,
        'The jobs it waits for (ids, or {"id", "on_failure"} with on_failure cancel, run, '
        "ignore or trigger): it stays waiting until they finish, then runs, or is cancelled "
        "if one fails (on_failure cancel, the default); trigger edges start it at a parent's "
        "death instead.",
    ),
    Option(
        "workflow_id",
        str,
        None,
        lambda value: check_name(value, "workflow id"),
        "The workflow it belongs to; list_jobs(workflow_id=...) lists a workflow's jobs.",
        min_length=1,
        max_length=MAX_JOB_ID_LENGTH,
        pattern=f"^{NAME_PATTERN.pattern}$",
    ),
    Option(
        "batch_id",
        str,
        None,
        lambda value: check_name(value, "batch id"),
        "The batch it belongs to; list_jobs(batch_id=...) lists a batch's jobs, and "
        "batch_counts counts them by state.",
        min_length=1,
        max_length=MAX_JOB_ID_LENGTH,
        pattern=f"^{NAME_PATTERN.pattern}$",
    ),
)
OPTIONS_BY_NAME = {option.name: option for option in OPTIONS}
_DEFAULTS = {
    option.name: None if option.default is None else option.check(option.default)
    for option in OPTIONS
}
"""Every option's default, checked once: a request checks only the options it gives."""


def check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Return every option, checked, with the defaults of those not given."""
    unknown = options.keys() - OPTIONS_BY_NAME.keys()
    if unknown:
        raise InvalidOptionError(
            f"unknown option {min(unknown)!r}; the options are {', '.join(OPTIONS_BY_NAME)}"
        )
    if options.get("delay") is not None and options.get("run_at") is not None:
        raise InvalidOptionError("pass delay= or run_at=, not both")
    checked = dict(_DEFAULTS)
    # Only the options given: a bulk enqueue of plain jobs checks none, each of thousands.
    for name, value in options.items():
        option = OPTIONS_BY_NAME[name]
        checked[name] = None if option.default is None and value is None else option.check(value)
    if not options.keys().isdisjoint(EXPIRY_OPTIONS):
        check_expiry(checked)
    if not options.keys().isdisjoint(KEY_OPTIONS):
        _check_keys(checked)
    return checked


def _check_keys(checked: dict[str, Any]) -> None:
    """Refuse unique and debounce options that do not go together, and fill the default
    `unique_states` of a period: completed (a dead or cancelled job does not hold its key)."""
    unique = checked["unique_key"] is not None or checked["unique_payload"]
    given = [name for name in UNIQUE_OPTIONS if checked[name] not in (None, OnConflict.RETURN)]
    if given and not unique:
        raise InvalidOptionError(f"{given[0]} needs unique_key= or unique_payload=True")
    if checked["debounce_max"] is not None and checked["debounce_key"] is None:
        raise InvalidOptionError("debounce_max needs debounce_key=")
    if unique and checked["debounce_key"] is not None:
        raise InvalidOptionError(
            "a job has a unique key or a debounce key, not both: a debounce key already keeps "
            "one unstarted job per key"
        )
    if checked["unique_for"] is not None and checked["unique_states"] is None:
        checked["unique_states"] = (JobStatus.COMPLETED,)


def _payload_key(prefix: str, payload_json: str) -> str:
    """The unique key of `unique_payload`: `prefix` and a digest of the payload with its keys
    sorted, so the same value in any key order is one key."""
    canonical = json.dumps(
        json.loads(payload_json), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return f"{prefix}#{hashlib.sha256(canonical.encode()).hexdigest()[:32]}"


def new_job(
    type: str,
    payload: JSON = None,
    *,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    **options: Unpack[EnqueueOptions],
) -> NewJob:
    """Validate one enqueue request and return it ready for a backend."""
    check_name(type, "task type")
    checked = check_options(options)
    checked["id"] = checked["id"] or new_job_id()
    if any(parent.job_id == checked["id"] for parent in checked["after"] or ()):
        raise InvalidOptionError(f"job {checked['id']!r} cannot wait for itself")
    payload_json = encode_json(payload, limit=max_payload_bytes)
    unique_key = checked["unique_key"]
    if checked["unique_payload"]:
        unique_key = _payload_key(unique_key or type, payload_json)
    return NewJob(
        id=checked["id"],
        queue=checked["queue"],
        type=type,
        payload_json=payload_json,
        priority=checked["priority"],
        max_attempts=checked["max_attempts"],
        delay=checked["delay"] or 0.0,
        run_at=checked["run_at"],
        unique_key=unique_key,
        unique_for=checked["unique_for"],
        unique_states=checked["unique_states"] or (),
        on_conflict=checked["on_conflict"],
        debounce_key=checked["debounce_key"],
        debounce_max=checked["debounce_max"],
        headers=checked["headers"] or {},
        limit_key=checked["limit_key"],
        expires_at=checked["expires_at"],
        expires_in=checked["expires_in"],
        parents=checked["after"] or (),
        workflow_id=checked["workflow_id"],
        batch_id=checked["batch_id"],
    )


__all__ = ["OPTIONS", "EnqueueOptions", "Option", "check_options", "new_job"]

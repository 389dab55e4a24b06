"""Checks at the API boundary: names, payloads and options become typed errors before any I/O."""

from __future__ import annotations

import enum
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TypeVar

from .errors import InvalidNameError, InvalidOptionError, InvalidPayloadError, PayloadTooLargeError
from .job import (
    JSON,
    TERMINAL_STATUSES,
    Job,
    JobStatus,
    NewJob,
    OnConflict,
    OnFailure,
    Parent,
    Priority,
)
from .jsontext import compact_json

Choice = TypeVar("Choice", bound=enum.StrEnum)
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
CURSOR_PATTERN = re.compile(r"[0-9]{1,18}")
"""A page's `next_cursor`: a job's position in enqueue order, which 18 digits hold below 2**63."""
IDENTIFIER_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
MIN_PRIORITY, MAX_PRIORITY = 0, 1000
MAX_ATTEMPTS_LIMIT = 1000
MAX_UNIQUE_KEY_LENGTH = 512
MAX_JOB_ID_LENGTH = 128
MAX_HEADERS_BYTES = 8 * 1024
"""Headers are small metadata (trace context, tenant, ...), read with every claimed job."""
DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
DEFAULT_MAX_ATTEMPTS = 3
MAX_PARENTS = 100_000
"""The most jobs one job may wait for: a fan-in (a chord's callback) of a large batch."""
MAX_DELAY_SECONDS = 100 * 365.25 * 86400
"""Jobs run within a century: a longer delay is a mistake, and overflows stored timestamps."""
_NESTING = (dict, list, tuple)


def check_name(value: object, what: str = "queue name") -> str:
    """Return `value` if it is a valid queue or task name: `[A-Za-z0-9_.:-]{1,128}`."""
    if not isinstance(value, str) or NAME_PATTERN.fullmatch(value) is None:
        raise InvalidNameError(
            f"invalid {what} {value!r}: use 1 to 128 characters from A-Z a-z 0-9 _ . : -"
        )
    return value


def check_identifier(value: object, what: str) -> str:
    """Return `value` if it is safe as an SQL identifier or key prefix: `[A-Za-z_][A-Za-z0-9_]*`."""
    if not isinstance(value, str) or IDENTIFIER_PATTERN.fullmatch(value) is None:
        raise InvalidNameError(
            f"invalid {what} {value!r}: use a letter or _ then up to 62 letters, digits or _"
        )
    return value


def encode_json(
    value: JSON, *, limit: int = DEFAULT_MAX_PAYLOAD_BYTES, what: str = "payload"
) -> str:
    """Encode a JSON value compactly; refuse what JSON cannot carry or would silently change.

    Refused: NaN and infinities, non-JSON types, lone surrogates, dict keys that are not
    strings (`{1: "a", "1": "b"}` would come back as `{"1": "b"}`), and excess size. Tuples
    are encoded as arrays and come back as lists: the same items, in order.
    """
    try:
        text = compact_json(value)
        size = len(text.encode("utf-8"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidPayloadError(f"{what} is not a JSON value: {exc}") from None
    # Without a "{" in the text there is no dict, and so no key to check.
    if "{" in text:
        _refuse_non_string_keys(value, what)
    if size > limit:
        raise PayloadTooLargeError(f"{what} is {size} bytes encoded, over the limit of {limit}")
    return text


def _refuse_non_string_keys(value: JSON, what: str) -> None:
    """Raise `InvalidPayloadError` at a dict key inside `value` that is not a string.

    `value` has been encoded already, so it is a tree of bounded depth, not a cycle.
    """
    containers = [value]
    while containers:
        item = containers.pop()
        if isinstance(item, dict):
            for key in item:
                if not isinstance(key, str):
                    as_json = json.dumps({key: 0})[1:-4]
                    raise InvalidPayloadError(
                        f"{what} has the dict key {key!r}, not a string: JSON would turn it "
                        f"into {as_json} (use string keys)"
                    )
            containers.extend(child for child in item.values() if isinstance(child, _NESTING))
        elif isinstance(item, list | tuple):
            containers.extend(child for child in item if isinstance(child, _NESTING))


def check_priority(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOptionError(f"priority must be an int, not {type(value).__name__}")
    if not MIN_PRIORITY <= value <= MAX_PRIORITY:
        raise InvalidOptionError(
            f"priority {value} is out of range {MIN_PRIORITY}..{MAX_PRIORITY} "
            f"(Priority.LOW={Priority.LOW}, CRITICAL={Priority.CRITICAL})"
        )
    return int(value)


def check_max_attempts(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOptionError(f"max_attempts must be an int, not {type(value).__name__}")
    if not 1 <= value <= MAX_ATTEMPTS_LIMIT:
        raise InvalidOptionError(f"max_attempts {value} is out of range 1..{MAX_ATTEMPTS_LIMIT}")
    return value


def check_seconds(value: object, what: str, *, allow_zero: bool = True) -> float:
    """Return a duration given as seconds or a `timedelta`, as finite non-negative seconds."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise InvalidOptionError(
            f"{what} must be seconds or a timedelta, not {type(value).__name__}"
        )
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidOptionError(f"{what} must be finite and {bound}, got {value!r}")
    return seconds


def check_headers(value: object) -> dict[str, str]:
    """Return job headers as a new dict: str keys (non-empty) to str values, small when encoded."""
    if not isinstance(value, Mapping):
        raise InvalidOptionError(
            f"headers must be a mapping of str to str, not {type(value).__name__}"
        )
    headers = dict(value)
    for key, item in headers.items():
        if not isinstance(key, str) or not key or not isinstance(item, str):
            raise InvalidOptionError(
                f"headers map non-empty str keys to str values, got {key!r}: {item!r}"
            )
    try:
        text = json.dumps(headers, ensure_ascii=False, separators=(",", ":"))
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidOptionError("headers hold a lone surrogate, which is not text") from None
    if size > MAX_HEADERS_BYTES:
        raise InvalidOptionError(
            f"headers are {size} bytes encoded, over the limit of {MAX_HEADERS_BYTES}"
        )
    return headers


def check_job_id(value: object) -> str:
    """Return `value` if it is a valid job id: `[A-Za-z0-9_.:-]{1,128}`, like a name.

    So an id is printable and needs no escaping in a URL path, a key or a log line. Generated
    ids (UUIDs) and the scheduler's (`schedule:<name>:<slot>`) keep to it.
    """
    return check_name(value, "job id")


def check_parents(value: object) -> tuple[Parent, ...]:
    """Return the parents `after=` names: a list of jobs, job ids, `Parent`s, or (from JSON)
    objects `{"id": ..., "on_failure": ...}`; each parent once, at most `MAX_PARENTS`."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, list | tuple):
        raise InvalidOptionError("after must be a list of jobs or job ids")
    if len(value) > MAX_PARENTS:
        raise InvalidOptionError(f"a job waits for at most {MAX_PARENTS} parents")
    parents = tuple(_parent(item) for item in value)
    seen: set[str] = set()
    for parent in parents:
        if parent.job_id in seen:
            raise InvalidOptionError(f"after names job {parent.job_id!r} twice")
        seen.add(parent.job_id)
    triggers = sum(parent.on_failure == OnFailure.TRIGGER for parent in parents)
    if 0 < triggers < len(parents):
        raise InvalidOptionError(
            "a job started by a parent's death (on_failure trigger) waits for no other kind of "
            "parent: give all its parents on_failure trigger, or none"
        )
    return parents


def _parent(item: object) -> Parent:
    if isinstance(item, Parent):
        return Parent(check_job_id(item.job_id), check_on_failure(item.on_failure))
    if isinstance(item, Job | NewJob):
        return Parent(item.id)
    if isinstance(item, Mapping):
        unknown = set(item) - {"id", "on_failure"}
        if unknown or "id" not in item:
            raise InvalidOptionError('a parent is {"id": ..., "on_failure": ...}')
        return Parent(check_job_id(item["id"]), check_on_failure(item.get("on_failure", "cancel")))
    return Parent(check_job_id(item))


def check_on_failure(value: object) -> OnFailure:
    """Return `value` as an `OnFailure` policy if it names one."""
    return _choice(OnFailure, value, "on_failure")


def _choice(kind: type[Choice], value: object, what: str) -> Choice:
    """`value` as the member of `kind` it names, else `InvalidOptionError` listing them."""
    if isinstance(value, str) and value in kind._value2member_map_:
        return kind(value)
    raise InvalidOptionError(f"{what} must be one of {', '.join(kind)}, not {value!r}")


def check_duration(what: str) -> Callable[[object], float]:
    """The check of a period option: seconds or a `timedelta` above 0, at most 100 years."""

    def check(value: object) -> float:
        seconds = check_seconds(value, what, allow_zero=False)
        if seconds > MAX_DELAY_SECONDS:
            raise InvalidOptionError(f"{what} {value!r} is over 100 years")
        return seconds

    return check


def check_unique_states(value: object) -> tuple[JobStatus, ...]:
    """Return the finished states `unique_states` names, sorted and each once.

    A live job always holds its key, so naming a live state is refused rather than ignored:
    it would read as a narrowing the option does not do.
    """
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple | set | frozenset):
        raise InvalidOptionError("unique_states must be a list of states")
    names = {status.value for status in TERMINAL_STATUSES}
    states: set[JobStatus] = set()
    for item in value:
        if item not in names:
            raise InvalidOptionError(
                f"unique_states names finished states ({', '.join(sorted(names))}) in which a "
                f"job keeps its unique key, not {item!r}: a live job always holds it (for a "
                "key that frees when its job starts, use debounce_key)"
            )
        states.add(JobStatus(item))
    if not states:
        raise InvalidOptionError("unique_states must name at least one state")
    return tuple(sorted(states))


def check_on_conflict(value: object) -> OnConflict:
    """Return `value` as an `OnConflict` choice if it names one."""
    return _choice(OnConflict, value, "on_conflict")


def check_debounce_key(value: object) -> str:
    """Return `value` if it is a storable key, as `check_unique_key` says."""
    return _check_key(value, "debounce_key")


def check_unique_key(value: object) -> str:
    """Return `value` if it is text of 1 to `MAX_UNIQUE_KEY_LENGTH` characters.

    NUL and lone surrogates are refused: no backend can store them as text.
    """
    return _check_key(value, "unique_key")


def check_limit_key(value: object) -> str:
    """Return `value` if it is a storable key, as `check_unique_key` says."""
    return _check_key(value, "limit_key")


def _check_key(value: object, name: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_UNIQUE_KEY_LENGTH:
        raise InvalidOptionError(
            f"{name} must be a string of 1 to {MAX_UNIQUE_KEY_LENGTH} characters"
        )
    if "\x00" in value or (not value.isascii() and _has_lone_surrogate(value)):
        raise InvalidOptionError(f"{name} {value!r} holds NUL or a lone surrogate")
    return value


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_delay(value: object, what: str = "delay") -> float:
    """Return a delay (seconds or a `timedelta`) as seconds, at most `MAX_DELAY_SECONDS`."""
    seconds = check_seconds(value, what)
    if seconds > MAX_DELAY_SECONDS:
        raise InvalidOptionError(f"{what} {value!r} is over 100 years")
    return seconds


def check_run_at(value: object) -> datetime:
    """Return `value` if it is a timezone-aware datetime within 100 years of now."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidOptionError("run_at must be a timezone-aware datetime")
    if abs(value.timestamp() - time.time()) > MAX_DELAY_SECONDS:
        raise InvalidOptionError("run_at must be within 100 years of now")
    return value


def check_expires_at(value: object) -> datetime:
    """Return `value` if it is a timezone-aware datetime within 100 years of now (it may have
    passed: the job then expires unstarted)."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidOptionError("expires_at must be a timezone-aware datetime")
    if abs(value.timestamp() - time.time()) > MAX_DELAY_SECONDS:
        raise InvalidOptionError("expires_at must be within 100 years of now")
    return value


def check_expires_in(value: object) -> float:
    """Return an expiry given as a duration (seconds or a `timedelta`) as seconds above 0."""
    seconds = check_seconds(value, "expires_in", allow_zero=False)
    if seconds > MAX_DELAY_SECONDS:
        raise InvalidOptionError(f"expires_in {value!r} is over 100 years")
    return seconds


def check_expiry(checked: Mapping[str, object]) -> None:
    """Refuse an expiry that is not after the job's scheduled start, when both are given the
    same way (two absolute times, or two durations from the enqueue). A mix of the two is
    compared by the backend's clock alone: a job due after its expiry expires unstarted."""
    expires_at, expires_in = checked.get("expires_at"), checked.get("expires_in")
    if expires_at is not None and expires_in is not None:
        raise InvalidOptionError("pass expires_at= or expires_in=, not both")
    run_at, delay = checked.get("run_at"), checked.get("delay")
    if isinstance(expires_at, datetime) and isinstance(run_at, datetime) and expires_at <= run_at:
        raise InvalidOptionError(
            f"expires_at {expires_at.isoformat()} is not after run_at {run_at.isoformat()}"
        )
    if isinstance(expires_in, float) and isinstance(delay, float) and expires_in <= delay:
        raise InvalidOptionError(f"expires_in {expires_in:g} s is not after the delay {delay:g} s")


def check_slots(slots: Mapping[str, int]) -> dict[str, int]:
    """Validate a claim's free slots per queue."""
    checked = {check_name(name): count for name, count in slots.items()}
    if any(not isinstance(count, int) or count < 0 for count in checked.values()):
        raise InvalidOptionError("claim slots must be non-negative ints")
    return checked

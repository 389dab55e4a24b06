"""Checks at the API boundary: names, payloads and options become typed errors before any I/O."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from datetime import datetime, timedelta

from .errors import InvalidNameError, InvalidOptionError, InvalidPayloadError, PayloadTooLargeError
from .ids import new_job_id
from .job import JSON, NewJob, Priority

NAME_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
IDENTIFIER_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
MIN_PRIORITY, MAX_PRIORITY = 0, 1000
MAX_ATTEMPTS_LIMIT = 1000
MAX_UNIQUE_KEY_LENGTH = 512
MAX_JOB_ID_LENGTH = 128
MAX_HEADERS_BYTES = 8 * 1024
"""Headers are small metadata (trace context, tenant, ...), read with every claimed job."""
DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
DEFAULT_MAX_ATTEMPTS = 3
MAX_DELAY_SECONDS = 100 * 365.25 * 86400
"""Jobs run within a century: a longer delay is a mistake, and overflows stored timestamps."""


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
    """Encode a JSON value compactly; refuse NaN, non-JSON types, lone surrogates, excess size."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        size = len(text.encode("utf-8"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidPayloadError(f"{what} is not a JSON value: {exc}") from None
    if size > limit:
        raise PayloadTooLargeError(f"{what} is {size} bytes encoded, over the limit of {limit}")
    return text


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


def new_job(
    type: str,
    payload: JSON = None,
    *,
    queue: str = "default",
    priority: int = Priority.NORMAL,
    delay: float | timedelta | None = None,
    run_at: datetime | None = None,
    unique_key: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    id: str | None = None,
    headers: Mapping[str, str] | None = None,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> NewJob:
    """Validate one enqueue request and return it ready for a backend."""
    check_name(type, "task type")
    check_name(queue, "queue name")
    if delay is not None and run_at is not None:
        raise InvalidOptionError("pass delay= or run_at=, not both")
    if run_at is not None and (not isinstance(run_at, datetime) or run_at.tzinfo is None):
        raise InvalidOptionError("run_at must be a timezone-aware datetime")
    if run_at is not None and abs(run_at.timestamp() - time.time()) > MAX_DELAY_SECONDS:
        raise InvalidOptionError("run_at must be within 100 years of now")
    if delay is not None and check_seconds(delay, "delay") > MAX_DELAY_SECONDS:
        raise InvalidOptionError(f"delay {delay!r} is over 100 years")
    if unique_key is not None and (
        not isinstance(unique_key, str) or not 0 < len(unique_key) <= MAX_UNIQUE_KEY_LENGTH
    ):
        raise InvalidOptionError(
            f"unique_key must be a string of 1 to {MAX_UNIQUE_KEY_LENGTH} characters"
        )
    if id is not None and (not isinstance(id, str) or not 0 < len(id) <= MAX_JOB_ID_LENGTH):
        raise InvalidOptionError(f"id must be a string of 1 to {MAX_JOB_ID_LENGTH} characters")
    return NewJob(
        id=id or new_job_id(),
        queue=queue,
        type=type,
        payload_json=encode_json(payload, limit=max_payload_bytes),
        priority=check_priority(priority),
        max_attempts=check_max_attempts(max_attempts),
        delay=0.0 if delay is None else check_seconds(delay, "delay"),
        run_at=run_at,
        unique_key=unique_key,
        headers={} if headers is None else check_headers(headers),
    )


def check_slots(slots: Mapping[str, int]) -> dict[str, int]:
    """Validate a claim's free slots per queue."""
    checked = {check_name(name): count for name, count in slots.items()}
    if any(not isinstance(count, int) or count < 0 for count in checked.values()):
        raise InvalidOptionError("claim slots must be non-negative ints")
    return checked

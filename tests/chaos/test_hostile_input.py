"""Property tests over hostile input, on all four backends: every value is either stored and
read back unchanged, or refused with a typed error (`queuekit.errors`) with nothing stored."""

from __future__ import annotations

import contextlib
import json
import math
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import queuekit
from queuekit import Queue, Schedule
from queuekit.errors import (
    InvalidNameError,
    InvalidOptionError,
    InvalidPayloadError,
    InvalidScheduleError,
    InvalidURLError,
    JobNotFoundError,
)
from queuekit.validation import NAME_PATTERN

EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
HOSTILE_NAMES = [
    "",
    "x" * 129,
    "a'; DROP TABLE queuekit_jobs; --",
    'a"b',
    "a\\b",
    "redis.call('FLUSHALL')",
    "]]..os.exit()--[[",
    "{queuekit:default}",
    "q}",
    "{",
    "line\nbreak",
    "carriage\r",
    "nul\x00",
    "tab\t",
    "*",
    "?",
    "%s",
    "$1",
    "ü",
    "\ud800",
]
# Every character, lone surrogates included (Hypothesis leaves them out by default).
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=40)
JSONISH: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | ANY_TEXT
    | st.binary(max_size=8)
    | st.sets(st.integers(), max_size=3)
    | st.builds(object),
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(ANY_TEXT, children, max_size=4)
        | st.dictionaries(st.tuples(st.integers()), children, min_size=1, max_size=2)
        # Keys JSON would silently turn into strings ({1: "a", "1": "b"} loses "a").
        | st.dictionaries(
            st.integers() | st.booleans() | st.none() | st.floats(allow_nan=False) | ANY_TEXT,
            children,
            min_size=1,
            max_size=3,
        )
    ),
    max_leaves=20,
)
NAMES = st.sampled_from(HOSTILE_NAMES) | ANY_TEXT | st.from_regex(NAME_PATTERN, fullmatch=True)


def is_json(value: Any) -> bool:
    """JSON that UTF-8 can carry and that reads back the same: a lone surrogate has no UTF-8
    encoding, and a dict key that is not a string would read back as one, so both are refused.
    (A tuple reads back as a list of the same items: accepted.)"""
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError, RecursionError):
        return False
    return string_keys_only(value)


def string_keys_only(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(key, str) for key in value) and all(
            string_keys_only(item) for item in value.values()
        )
    if isinstance(value, list | tuple):
        return all(string_keys_only(item) for item in value)
    return True


class Ledger:
    """What one test stored, to check after each example that nothing else was."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    async def check(self, queue: Queue) -> None:
        stored: set[str] = set()
        for name in await queue.list_queues():
            stored |= {job.id for job in (await queue.list_jobs(queue=name, limit=1000)).jobs}
        assert stored == self.ids


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


@EXAMPLES
@given(payload=JSONISH)
async def test_payloads_round_trip_or_are_refused(
    queue: Queue, ledger: Ledger, payload: Any
) -> None:
    if is_json(payload):
        job = await queue.enqueue("t", payload)
        ledger.ids.add(job.id)
        expected = json.loads(json.dumps(payload))
        assert (await queue.get_job(job.id)).payload == expected
    else:
        with pytest.raises(InvalidPayloadError):
            await queue.enqueue("t", payload)
        with pytest.raises(InvalidPayloadError):
            queuekit.new_job("t", payload)
    await ledger.check(queue)


async def test_huge_and_deep_payloads_are_refused(queue: Queue) -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    for payload in (deep, "x" * (1024 * 1024 + 1), ["é" * 1000] * 600):
        with pytest.raises(InvalidPayloadError):
            await queue.enqueue("t", payload)
    assert (await queue.list_jobs()).jobs == []


@EXAMPLES
@given(name=NAMES, as_queue=st.booleans())
async def test_names_are_stored_exactly_or_refused(
    queue: Queue, ledger: Ledger, name: str, as_queue: bool
) -> None:
    options = {"queue": name} if as_queue else {"type": name}
    arguments: dict[str, Any] = {"type": "t", **options}
    if NAME_PATTERN.fullmatch(name):
        job = await queue.enqueue(arguments.pop("type"), **arguments)
        ledger.ids.add(job.id)
        stored = await queue.get_job(job.id)
        assert (stored.queue if as_queue else stored.type) == name
        if as_queue:
            assert (await queue.stats(name)).pending >= 1
    else:
        with pytest.raises(InvalidNameError):
            await queue.enqueue(arguments.pop("type"), **arguments)
        if as_queue:
            with pytest.raises(InvalidNameError):
                await queue.stats(name)
            with pytest.raises(InvalidNameError):
                await queue.pause(name)
        queue_name, type_name = (name, None) if as_queue else (None, name)
        with pytest.raises(InvalidNameError):
            await queue.list_jobs(queue=queue_name, type=type_name)
        for bulk in (queue.replay_all, queue.cancel_all, queue.delete_all):
            with pytest.raises(InvalidNameError):
                await bulk(queue=queue_name, type=type_name)
    await ledger.check(queue)


@EXAMPLES
@given(job_id=NAMES)
async def test_ids_are_stored_exactly_or_refused(queue: Queue, ledger: Ledger, job_id: str) -> None:
    if NAME_PATTERN.fullmatch(job_id) and job_id not in ledger.ids:
        job = await queue.enqueue("t", id=job_id)
        ledger.ids.add(job.id)
        assert job.id == job_id and (await queue.get_job(job_id)).id == job_id
        assert (await queue.list_jobs(limit=1)).jobs[0].id == job_id
    elif job_id in ledger.ids:
        with pytest.raises(InvalidOptionError):
            await queue.enqueue("t", id=job_id)
    else:
        with pytest.raises(InvalidNameError):
            await queue.enqueue("t", id=job_id)
        with pytest.raises(InvalidNameError):
            queuekit.new_job("t", id=job_id)
        # No job can have that id: every lookup finds none, on every backend.
        for lookup in (queue.get_job, queue.cancel, queue.replay, queue.result):
            with pytest.raises(JobNotFoundError):
                await lookup(job_id)
        assert not await queue.delete_job(job_id)
    await ledger.check(queue)


@EXAMPLES
@given(key=ANY_TEXT | st.sampled_from(HOSTILE_NAMES))
async def test_unique_keys_are_stored_exactly_or_refused(
    queue: Queue, ledger: Ledger, key: str
) -> None:
    is_text = "\x00" not in key and is_json(key)
    if is_text and 0 < len(key) <= 512:
        job = await queue.enqueue("t", unique_key=key)
        ledger.ids.add(job.id)
        assert (await queue.get_job(job.id)).unique_key == key
        assert (await queue.enqueue("t", unique_key=key)).id == job.id
    else:
        with pytest.raises(InvalidOptionError):
            await queue.enqueue("t", unique_key=key)
    await ledger.check(queue)


@EXAMPLES
@given(
    priority=st.integers() | st.sampled_from([True, 1.5, "10", None]),
    attempts=st.integers() | st.sampled_from([False, 2.0, "3", None]),
)
async def test_priorities_and_attempts_in_range_or_refused(
    queue: Queue, ledger: Ledger, priority: Any, attempts: Any
) -> None:
    valid = (
        isinstance(priority, int)
        and not isinstance(priority, bool)
        and 0 <= priority <= 1000
        and isinstance(attempts, int)
        and not isinstance(attempts, bool)
        and 1 <= attempts <= 1000
    )
    if valid:
        job = await queue.enqueue("t", priority=priority, max_attempts=attempts)
        ledger.ids.add(job.id)
        stored = await queue.get_job(job.id)
        assert (stored.priority, stored.max_attempts) == (priority, attempts)
    else:
        with pytest.raises(InvalidOptionError):
            await queue.enqueue("t", priority=priority, max_attempts=attempts)
    await ledger.check(queue)


DELAYS: st.SearchStrategy[Any] = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers()
    | st.timedeltas()
    | st.sampled_from(["5", True, [], None])
)


@EXAMPLES
@given(delay=DELAYS)
async def test_delays_are_stored_or_refused(queue: Queue, ledger: Ledger, delay: Any) -> None:
    seconds = (
        delay.total_seconds()
        if isinstance(delay, timedelta)
        else delay
        if isinstance(delay, int | float) and not isinstance(delay, bool)
        else None
    )
    if delay is None or (
        seconds is not None and math.isfinite(seconds) and 0 <= seconds <= 100 * 365.25 * 86400
    ):
        job = await queue.enqueue("t", delay=delay)
        ledger.ids.add(job.id)
        stored = await queue.get_job(job.id)
        lag = (stored.scheduled_at - stored.created_at).total_seconds()
        assert abs(lag - (seconds or 0)) < 5
    else:
        with pytest.raises(InvalidOptionError):
            await queue.enqueue("t", delay=delay)
    await ledger.check(queue)


@settings(max_examples=300, deadline=None)
@given(
    expression=st.text(st.sampled_from("0123456789*/,-LW#? abcdefghijklmnopqrstuvwxyz@\n"))
    | ANY_TEXT
)
def test_cron_accepts_or_raises_invalid_schedule(expression: str) -> None:
    with contextlib.suppress(InvalidScheduleError):
        Schedule.cron(expression).job("t", {})


@settings(max_examples=300, deadline=None)
@given(
    url=ANY_TEXT
    | st.builds(
        "{}://{}".format,
        st.sampled_from(["redis", "rediss", "postgresql", "postgres", "sqlite", "memory", "x"]),
        ANY_TEXT,
    )
)
def test_bad_urls_raise_invalid_url(url: str) -> None:
    with contextlib.suppress(InvalidURLError):
        queuekit.connect(url)

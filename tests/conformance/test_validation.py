"""Conformance: bad input raises a typed error at the boundary and stores nothing."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

import queuekit
from queuekit import Queue
from queuekit.errors import (
    InvalidNameError,
    InvalidOptionError,
    InvalidPayloadError,
    JobNotFoundError,
    PayloadTooLargeError,
    ValidationError,
)

BAD_NAMES = [
    "",
    "x" * 129,
    "with space",
    "semi;colon",
    "quote'",
    "brace{x}",
    "new\nline",
    "ünï",
    None,
    5,
]
BAD_PAYLOADS = [
    {1, 2},
    math.nan,
    {"x": math.inf},
    object(),
    b"bytes",
    Decimal("1.5"),
    {"bad": "\ud800"},
    {(1, 2): "tuple key"},
    {1: "a", "1": "b"},
    {None: "null key"},
    {True: "bool key"},
    {1.5: "float key"},
    {"nested": [{"ok": {2: "int key"}}]},
]
BAD_IDS = [
    "",
    "x" * 129,
    "order 42",
    "a/b",
    "a?b",
    "a#b",
    "%2F",
    "nul\x00",
    "\ud800",
    "ü",
    "tab\t",
    5,
]


async def _nothing_stored(queue: Queue) -> None:
    assert (await queue.list_jobs()).jobs == []


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_bad_queue_and_type_names(queue: Queue, name: Any) -> None:
    with pytest.raises(InvalidNameError):
        await queue.enqueue("t", queue=name)
    with pytest.raises(InvalidNameError):
        await queue.enqueue(name)
    await _nothing_stored(queue)


def _payload_id(payload: object) -> str:
    """A test id that is the same in every process (a bare object's repr holds its address)."""
    return "object()" if type(payload) is object else repr(payload)


@pytest.mark.parametrize("payload", BAD_PAYLOADS, ids=_payload_id)
async def test_payloads_that_are_not_json(queue: Queue, payload: Any) -> None:
    with pytest.raises(InvalidPayloadError):
        await queue.enqueue("t", payload)
    await _nothing_stored(queue)


async def test_tuples_are_stored_as_lists(queue: Queue) -> None:
    job = await queue.enqueue("t", {"pair": (1, "a"), "nested": [(2, (3,))]})
    assert (await queue.get_job(job.id)).payload == {"pair": [1, "a"], "nested": [[2, [3]]]}


@pytest.mark.parametrize("job_id", BAD_IDS, ids=repr)
async def test_bad_job_ids(queue: Queue, job_id: Any) -> None:
    with pytest.raises(InvalidNameError):
        await queue.enqueue("t", id=job_id)
    with pytest.raises(InvalidNameError):
        queuekit.new_job("t", id=job_id)
    # No job can have such an id: looking one up finds nothing, on every backend.
    for lookup in (queue.get_job, queue.cancel, queue.replay, queue.result):
        with pytest.raises(JobNotFoundError):
            await lookup(job_id)
    assert await queue.delete_job(job_id) is False
    await _nothing_stored(queue)


async def test_ids_the_library_makes_are_valid(queue: Queue) -> None:
    made = queuekit.new_job("t").id
    for job_id in (made, "schedule:report:2030-01-01T00:00:00.250000Z", "a" * 128, "A-z_0.9:"):
        assert (await queue.enqueue("t", id=job_id)).id == job_id
        assert (await queue.get_job(job_id)).id == job_id


async def test_deeply_nested_payload(queue: Queue) -> None:
    payload: Any = []
    for _ in range(100_000):
        payload = [payload]
    with pytest.raises(InvalidPayloadError):
        await queue.enqueue("t", payload)
    await _nothing_stored(queue)


async def test_oversized_payload(queue: Queue) -> None:
    with pytest.raises(PayloadTooLargeError):
        await queue.enqueue("t", "x" * (1024 * 1024))
    small = queuekit.Queue(queue.backend, max_payload_bytes=100)
    with pytest.raises(PayloadTooLargeError):
        await small.enqueue("t", "y" * 200)
    with pytest.raises(PayloadTooLargeError):
        await small.enqueue_many([queuekit.new_job("t", "z" * 200)])
    await _nothing_stored(queue)


@pytest.mark.parametrize(
    "options",
    [
        {"priority": -1},
        {"priority": 1001},
        {"priority": "high"},
        {"priority": True},
        {"max_attempts": 0},
        {"max_attempts": -3},
        {"max_attempts": 1.5},
        {"delay": -1},
        {"delay": math.nan},
        {"delay": math.inf},
        {"delay": "soon"},
        {"delay": timedelta(seconds=-5)},
        {"run_at": datetime(2030, 1, 1)},
        {"delay": 6e307},
        {"delay": timedelta(days=365 * 101)},
        {"run_at": datetime(9999, 1, 1, tzinfo=UTC)},
        {"run_at": datetime(1, 1, 1, tzinfo=UTC)},
        {"delay": 1, "run_at": datetime(2030, 1, 1).astimezone()},
        {"unique_key": ""},
        {"unique_key": "k" * 513},
        {"unique_key": "nul\x00"},
        {"unique_key": "lone \udc80 surrogate"},
    ],
    ids=repr,
)
async def test_options_out_of_range(queue: Queue, options: dict[str, Any]) -> None:
    with pytest.raises(InvalidOptionError):
        await queue.enqueue("t", **options)
    await _nothing_stored(queue)


async def test_one_bad_job_in_a_bulk_enqueue_stores_none(queue: Queue) -> None:
    with pytest.raises(ValidationError):
        await queue.enqueue_many([queuekit.new_job("t"), queuekit.new_job("t", priority=5000)])
    with pytest.raises(InvalidOptionError):
        await queue.enqueue_many([queuekit.new_job("t"), {"type": "t"}])  # type: ignore[list-item]
    await _nothing_stored(queue)


async def test_duplicate_id_is_refused(queue: Queue) -> None:
    await queue.enqueue("t", id="same")
    with pytest.raises(InvalidOptionError):
        await queue.enqueue("t", id="same")
    assert len((await queue.list_jobs()).jobs) == 1


async def test_bad_listing_arguments(queue: Queue) -> None:
    with pytest.raises(InvalidOptionError):
        await queue.list_jobs(status="exploded")
    with pytest.raises(InvalidOptionError):
        await queue.list_jobs(limit=0)
    with pytest.raises(InvalidOptionError):
        await queue.list_jobs(cursor="'; DROP TABLE")
    with pytest.raises(InvalidOptionError):
        await queue.list_jobs(cursor="9" * 30)
    with pytest.raises(InvalidNameError):
        await queue.stats("bad name")


def test_errors_share_one_root() -> None:
    for error in (InvalidNameError, InvalidPayloadError, PayloadTooLargeError, InvalidOptionError):
        assert issubclass(error, ValidationError)
        assert issubclass(error, queuekit.QueueKitError)
        assert issubclass(error, ValueError)

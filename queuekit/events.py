"""Job events as they happen: the `Event` model and its one JSON form, subscribers' bounded
buffers, the hub that fans a store's events out in a process, and the outbox that batches a
process's events into few publishes."""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from .errors import InvalidOptionError
from .job import CLAIMABLE_STATUSES, JobStatus
from .jsontext import compact_json
from .validation import check_job_id, check_name

if TYPE_CHECKING:
    from .backend import Backend, Rescued
    from .job import Job, NewJob

logger = logging.getLogger("queuekit.events")

BUFFER_EVENTS = 10_000
"""Events a subscriber's buffer holds; past it, the oldest are dropped (and counted)."""
PUBLISH_EVERY = 0.05
"""Seconds between two publishes of one process's events: a publish per process, not per job."""
MAX_ERROR_CHARS = 200
"""An event carries the first line of an error, at most this long."""

# The notes that tell apart the ways a job comes to wait (`EventKind.ENQUEUED`, `SNOOZED`).
REPLAY = "replay"
RUN_NOW = "run now"
RATE_LIMITED = "rate limited"
SHUTDOWN = "shutdown"
RELEASED = "released"


class EventKind(enum.StrEnum):
    """What happened to a job (or, for `DROPPED`, to the subscription)."""

    ENQUEUED = "enqueued"
    """A job is waiting to run: a new one; or, by its `note`, one replayed (`replay`: pending,
    attempts reset), made due (`run now`: its status and attempts kept), or `released` (its
    parents have finished: it left `waiting` for `pending`)."""
    STARTED = "started"
    PROGRESS = "progress"
    COMPLETED = "completed"
    FAILED = "failed"
    """An attempt failed with a retry left (`error` "lease expired": the rescuer took back
    a lease its worker lost)."""
    DEAD = "dead"
    """An attempt failed with no retry left (`error` "lease expired": rescued)."""
    CANCELLED = "cancelled"
    """A job was cancelled: by `cancel`, by expiry (`error` "expired"), or by a parent's end
    (`error` its `last_error`, "parent <id> dead"...)."""
    WAITING = "waiting"
    """A job went back to waiting for its parents: a replay brought back the parent that had
    cancelled it."""
    SNOOZED = "snoozed"
    """A job went back to waiting without using an attempt: by its `note`, a snooze
    (`Retry` with `count_attempt=False`), a `rate limited` hand-back, or one at `shutdown`."""
    DELETED = "deleted"
    DROPPED = "dropped"
    """Events this subscriber missed: `count` of them when known (its buffer overflowed),
    None when not (the connection to the store was lost and made again)."""


JOB_KINDS = frozenset(EventKind) - {EventKind.DROPPED}
BULK_EVENTS: dict[str, tuple[EventKind, str | None]] = {
    "replay_all": (EventKind.ENQUEUED, REPLAY),
    "cancel_all": (EventKind.CANCELLED, None),
    "delete_all": (EventKind.DELETED, None),
    "run_now_all": (EventKind.ENQUEUED, RUN_NOW),
}
"""The event of each bulk repair of `Queue`, by its name, and its note."""


@dataclass(frozen=True, slots=True)
class Event:
    """One change of one job, or of many (`count`), as a subscriber receives it."""

    kind: EventKind
    queue: str | None = None
    """None only on a `dropped` event."""
    job_id: str | None = None
    """None for an event about many jobs (`count`), or a `dropped` one."""
    type: str | None = None
    at: datetime | None = None
    """When, by the backend's clock, where the publisher knew it (a job's `created_at`,
    `started_at`, `finished_at`); else None."""
    attempt: int | None = None
    progress: float | None = None
    note: str | None = None
    error: str | None = None
    """The first line of the error (failed, dead), or why (`expired`, for cancels by expiry)."""
    count: int | None = None
    """How many jobs an event about many is for (`cancel_all`, expiry), or events dropped."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form every transport, the API's stream and `queuekit tail --json` use:
        the fields that are set, `at` in ISO 8601."""
        data: dict[str, Any] = {"kind": self.kind.value}
        for name in FIELDS[1:]:
            value = getattr(self, name)
            if value is not None:
                data[name] = value.isoformat() if isinstance(value, datetime) else value
        return data

    def to_json(self) -> str:
        return compact_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        """The event `to_dict` gave (an unknown field is ignored)."""
        values: dict[str, Any] = {name: data.get(name) for name in FIELDS}
        values["kind"] = EventKind(data["kind"])
        if values["at"] is not None:
            values["at"] = datetime.fromisoformat(values["at"])
        return cls(**values)

    @classmethod
    def of_job(cls, kind: EventKind, job: Job, at: datetime | None = None, **more: Any) -> Event:
        return cls(kind, job.queue, job.id, job.type, at, job.attempts, **more)


FIELDS = tuple(field.name for field in fields(Event))


def first_line(text: str | None) -> str | None:
    """An error's first line, bounded, as events carry it."""
    if text is None:
        return None
    line = text.strip().split("\n", 1)[0]
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1] + "…"


# The wire: a transport sends events as chunks of JSON text, each under its size limit.


def encode_chunks(events: Sequence[Event], limit: int, serial: int) -> list[str]:
    """`events` as JSON texts of at most `limit` bytes each, in order. Each chunk carries
    `serial` and its index, so no two chunks of a process are the same text (PostgreSQL folds
    identical notifications of one transaction into one)."""
    chunks: list[str] = []
    parts: list[str] = []
    size = 0
    for event in events:
        text = event.to_json()
        length = len(text.encode()) + 1
        if parts and size + length > limit:
            chunks.append(_chunk(serial, len(chunks), parts))
            parts, size = [], 0
        parts.append(text)
        size += length
    if parts:
        chunks.append(_chunk(serial, len(chunks), parts))
    return chunks


CHUNK_OVERHEAD = 48
"""Bytes a chunk adds around its events (`{"n":"<serial>.<index>","events":[...]}`)."""


def _chunk(serial: int, index: int, parts: list[str]) -> str:
    return f'{{"n":"{serial}.{index}","events":[{",".join(parts)}]}}'


def decode_chunk(text: str) -> list[Event]:
    """The events of one chunk; a chunk that is not one (another version's?) gives none."""
    try:
        data = json.loads(text)
        return [Event.from_dict(item) for item in data["events"]]
    except (ValueError, KeyError, TypeError):
        logger.warning("an event chunk could not be read; ignored: %.80s", text)
        return []


# Subscribing


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a subscriber wants: of `queue`, `type`, `job_id` and `kinds` if given.

    An event passes the filters on what it does not name (a queue, a type, a job): it may
    concern them. That is an event about many jobs (no id), or one whose publisher knew only
    the job's id (`deleted`). `dropped` events always pass.
    """

    queue: str | None = None
    type: str | None = None
    job_id: str | None = None
    kinds: frozenset[EventKind] | None = None

    @classmethod
    def of(
        cls,
        queue: str | None = None,
        type: str | None = None,
        job_id: str | None = None,
        kinds: Iterable[EventKind | str] | None = None,
    ) -> EventFilter:
        """A filter from user input: names checked, kinds by name (`InvalidOptionError`)."""
        if isinstance(kinds, str):
            raise InvalidOptionError("kinds takes a list of event kinds, not one string")
        chosen = None
        if kinds is not None:
            try:
                chosen = frozenset(EventKind(kind) for kind in kinds)
            except ValueError:
                known = ", ".join(kind.value for kind in JOB_KINDS)
                raise InvalidOptionError(f"unknown event kind in {kinds!r}; use {known}") from None
        return cls(
            None if queue is None else check_name(queue),
            None if type is None else check_name(type, "task type"),
            None if job_id is None else check_job_id(job_id),
            chosen,
        )

    def matches(self, event: Event) -> bool:
        if event.kind is EventKind.DROPPED:
            return True
        if self.kinds is not None and event.kind not in self.kinds:
            return False
        if self.queue is not None and event.queue not in (self.queue, None):
            return False
        if self.job_id is not None and event.job_id not in (self.job_id, None):
            return False
        return self.type is None or event.type in (self.type, None)


class EventSink:
    """One subscriber's buffer: up to `size` events; when full, the oldest go, and the next
    read returns one `dropped` event counting them before the rest."""

    def __init__(self, where: EventFilter, size: int = BUFFER_EVENTS) -> None:
        self.where = where
        self.size = size
        self._events: deque[Event] = deque()
        self._dropped = 0
        self._gap = False
        self._ready = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        """The loop of the reader, set when it subscribes: a publisher on another thread (a
        SQLite file's hub is shared by the process) hands its events over through it."""

    def put(self, events: Iterable[Event]) -> None:
        if self.loop is not None and not _running_in(self.loop):
            self.loop.call_soon_threadsafe(self._put, list(events))
        else:
            self._put(events)

    def _put(self, events: Iterable[Event]) -> None:
        for event in events:
            if self.where.matches(event):
                if len(self._events) >= self.size:
                    self._events.popleft()
                    self._dropped += 1
                self._events.append(event)
                self._ready.set()

    def gap(self) -> None:
        """Events were lost, how many unknown (a lost connection)."""
        self._gap = True
        self._ready.set()

    async def get(self) -> Event:
        while True:
            if self._gap or self._dropped:
                count = None if self._gap else self._dropped
                self._gap, self._dropped = False, 0
                return Event(EventKind.DROPPED, count=count)
            if self._events:
                return self._events.popleft()
            self._ready.clear()
            await self._ready.wait()


def _running_in(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class EventHub:
    """The subscribers of one store in this process; a backend's transport feeds it."""

    def __init__(self) -> None:
        self.sinks: set[EventSink] = set()

    def deliver(self, events: Sequence[Event]) -> None:
        for sink in list(self.sinks):  # a copy: another thread may subscribe meanwhile
            sink.put(events)

    def gap(self) -> None:
        for sink in list(self.sinks):
            sink.gap()


class EventStream:
    """`Queue.events()`: iterate it (`async for`) to receive events as they happen.

    It subscribes when first iterated or entered, so events from then on are received; there
    is no replay of earlier ones. Use it as `async with queue.events() as stream:` to end the
    subscription deterministically; otherwise it ends when the stream is garbage collected.
    """

    def __init__(self, backend: Backend, where: EventFilter, buffer: int = BUFFER_EVENTS) -> None:
        self.backend = backend
        self.sink = EventSink(where, buffer)
        self._state = "new"

    async def open(self) -> Self:
        """Subscribe now (iterating or entering does it too)."""
        if self._state == "new":
            self.sink.loop = asyncio.get_running_loop()
            await self.backend.subscribe_events(self.sink)
            self._state = "open"
        return self

    async def aclose(self) -> None:
        if self._state == "open":
            await self.backend.unsubscribe_events(self.sink)
        self._state = "closed"

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        if self._state == "closed":
            raise StopAsyncIteration
        await self.open()
        return await self.sink.get()

    def __del__(self) -> None:
        # Unsubscribing in-process is a set removal; a transport's listener notices it.
        if self._state == "open":
            self.backend.event_hub().sinks.discard(self.sink)


# Publishing


Pending = tuple["EventKind", "Job", "datetime | None", dict[str, Any]]
"""An event about a job as the hot path notes it: the `Event` is made when published."""


class EventOutbox:
    """Collects one process's events and publishes them in batches, at most one publish every
    `PUBLISH_EVERY` seconds: the hot path appends a tuple to a list, and the events are made
    in the publish. A publish that fails is logged and its events are lost (subscribers are
    told there is no replay)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._pending: list[Event | Pending] = []
        self._scheduled = False
        self._task: asyncio.Task[None] | None = None
        """The latest publish scheduled (held here: the loop keeps only weak references)."""
        self._lock = asyncio.Lock()
        """Publishes go one at a time, so subscribers get one process's events in order."""
        self._published_at = -PUBLISH_EVERY
        self.events_published = 0
        """Events published (the tests look)."""

    def add(self, event: Event) -> None:
        """Publish `event` soon, unless this backend knows nobody subscribes."""
        if self.backend.events_wanted():
            self._note(event)

    def job(self, kind: EventKind, job: Job, at: datetime | None = None, **more: Any) -> None:
        """Publish an event about `job` soon, unless this backend knows nobody subscribes."""
        if self.backend.events_wanted():
            self._note((kind, job, at, more))

    def enqueued(self, requests: Sequence[NewJob], stored: Sequence[Job]) -> None:
        """The jobs an enqueue stored (not those a unique key returned instead)."""
        if self.backend.events_wanted():
            requested = {request.id for request in requests}
            for job in stored:
                if job.id in requested:
                    self._note((EventKind.ENQUEUED, job, job.created_at, {}))

    def replayed(self, job: Job) -> None:
        """`replay` returned `job`: announced if it is as a replay leaves a job (pending, no
        attempts; a pending job left alone may be too, and is waiting all the same)."""
        if job.status == JobStatus.PENDING and job.attempts == 0:
            self.job(EventKind.ENQUEUED, job, job.scheduled_at, note=REPLAY)

    def made_due(self, job: Job) -> None:
        """`run_now` returned `job`: announced if it is waiting (so due now)."""
        if job.status in CLAIMABLE_STATUSES:
            self.job(EventKind.ENQUEUED, job, job.scheduled_at, note=RUN_NOW)

    def deleted(self, job_id: str) -> None:
        """The job was deleted; its queue and type are not known here: the event has its id."""
        self.add(Event(EventKind.DELETED, job_id=job_id))

    def changed_in_bulk(self, what: str, queue: str | None, type: str | None, count: int) -> None:
        """The bulk repair `what` (a `Queue` method's name) changed `count` jobs of `queue`
        and `type` (None: of every one)."""
        kind, note = BULK_EVENTS[what]
        self.add(Event(kind, queue, type=type, note=note, count=count))

    def rescued(self, rescued: Rescued) -> None:
        """How many jobs the rescuer failed, to run again, and moved to dead (not which)."""
        from .backend import LEASE_EXPIRED  # backend.py imports this module

        for kind, count in ((EventKind.FAILED, rescued.failed), (EventKind.DEAD, rescued.dead)):
            if count:
                self.add(Event(kind, count=count, error=LEASE_EXPIRED))

    def _note(self, pending: Event | Pending) -> None:
        self._pending.append(pending)
        if not self._scheduled:
            self._scheduled = True
            self._task = asyncio.get_running_loop().create_task(self._publish_soon())

    async def _publish_soon(self) -> None:
        await asyncio.sleep(max(0.0, self._published_at + PUBLISH_EVERY - time.monotonic()))
        self._scheduled = False
        await self._publish()

    async def _publish(self) -> None:
        async with self._lock:
            pending, self._pending = self._pending, []
            if not pending or not self.backend.events_wanted():
                return
            events = [
                item if isinstance(item, Event) else Event.of_job(*item[:3], **item[3])
                for item in pending
            ]
            self._published_at = time.monotonic()
            try:
                await self.backend.publish_events(events)
            except Exception as exc:
                logger.warning("%d events not published: %s", len(events), exc)
                return
            self.events_published += len(events)

    async def flush(self) -> None:
        """Publish what is pending now (a process about to stop: `Queue.close`)."""
        if self._task is not None:
            await self._task
        await self._publish()


__all__ = [
    "BUFFER_EVENTS",
    "Event",
    "EventFilter",
    "EventKind",
    "EventOutbox",
    "EventStream",
]

"""`Scheduler`: interval and cron jobs, run beside your code, each slot fired exactly once.

Run a `Scheduler` in every replica of a service if you like: there is no leader. Every slot
has an identity (schedule name + slot instant) and its job is enqueued with an `id` and a
`unique_key` derived from it, so the backend itself keeps one job per slot however many
schedulers try. See docs/scheduler.md for the whole design.
"""

from __future__ import annotations

import enum
import inspect
import json
import logging
import math
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, Self

import anyio
from anyio.abc import TaskGroup

from .cron import Cron, Interval, Trigger, short_hash, slot_text, to_period
from .errors import (
    BackendUnavailableError,
    InvalidOptionError,
    InvalidPayloadError,
    InvalidScheduleError,
    PayloadTooLargeError,
)
from .job import JSON, Job, Priority
from .queue import Queue
from .tasks import Task
from .validation import (
    DEFAULT_MAX_ATTEMPTS,
    MAX_JOB_ID_LENGTH,
    NAME_PATTERN,
    check_max_attempts,
    check_name,
    check_priority,
    encode_json,
)

logger = logging.getLogger("queuekit.scheduler")

DEFAULT_GRACE = 60.0
"""Seconds a slot may be late and still count as on time."""
PROBE_DEPTH = 1024
"""How many slots back a starting scheduler looks for its schedule's last run."""
PROBE_EACH = 16
"""Of those, how many recent slots it looks at one by one (then 32, 64, 128… back)."""
MAX_COUNTED = 10_000
"""Missed slots are counted up to this many."""
KEPT_SKIPS = 50
"""How many skip records introspection keeps per schedule."""


class Missed(enum.StrEnum):
    """What to do with slots that passed while no scheduler could fire them."""

    RUN_ONCE = "run_once"
    """Enqueue one job, for the latest missed slot, standing in for all of them."""
    SKIP = "skip"
    """Enqueue nothing for them (each is recorded as skipped); carry on with the next slot."""


class Overlap(enum.StrEnum):
    """What to do when a slot comes while the schedule's previous job has not finished."""

    ALLOW = "allow"
    """Enqueue anyway."""
    SKIP = "skip"
    """Skip this slot (recorded) while a job of the schedule is pending, running or failed
    (waiting to retry)."""


class SkipReason(enum.StrEnum):
    MISSED = "missed"
    """The slot passed while no scheduler ran (or the backend was down) and `missed="skip"`."""
    OVERLAP = "overlap"
    """The previous job was still unfinished and `overlap="skip"`."""


@dataclass(frozen=True, slots=True)
class Fire:
    """The last slot of a schedule that has a job."""

    slot: datetime
    job_id: str
    seen_at: datetime
    """When this scheduler enqueued it or found it (its clock)."""
    by_this_scheduler: bool
    """True if this scheduler's enqueue stored (or, racing another, returned) the job; False if
    it found the slot already fired, by another replica or before a restart."""
    coalesced: int = 0
    """How many missed slots before `slot` this one job stands in for (`Missed.RUN_ONCE`)."""


@dataclass(frozen=True, slots=True)
class Skip:
    """Slots a schedule skipped: `count` of them, from `first` to `last`."""

    first: datetime
    last: datetime
    count: int
    reason: SkipReason
    job_id: str | None = None
    """For an overlap: the unfinished job that caused it."""


@dataclass(frozen=True)
class Schedule:
    """A recurring job: what to enqueue (`type`, payload, options) and when (`trigger`).

    Build one with `Schedule.every(...)` or `Schedule.cron(...)` then `.job(type, payload)`;
    a list of them can be handed to `Scheduler(queue, schedules)` or
    `Worker(queue, tasks, schedules=...)`. The `name` identifies the schedule across processes
    and restarts: keep it stable.
    """

    name: str
    trigger: Trigger
    type: str
    payload_json: str = "null"
    queue: str = "default"
    priority: int = Priority.NORMAL
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    missed: Missed = Missed.RUN_ONCE
    overlap: Overlap = Overlap.ALLOW
    jitter: float = 0.0
    """Seconds: each slot fires up to this much late, by an amount every replica agrees on."""
    grace: float = DEFAULT_GRACE
    """Seconds a slot may be late and still count as on time (not missed)."""

    def __post_init__(self) -> None:
        check_name(self.name, "schedule name")
        if not isinstance(self.trigger, Trigger):
            raise InvalidScheduleError(
                f"trigger must be an Interval or a Cron, not {type(self.trigger).__name__}"
            )
        check_name(self.type, "task type")
        check_name(self.queue, "queue name")
        check_priority(self.priority)
        check_max_attempts(self.max_attempts)
        if not isinstance(self.payload_json, str):
            raise InvalidPayloadError("payload_json must be a JSON text")
        try:
            json.loads(self.payload_json)
        except ValueError as exc:
            raise InvalidPayloadError(f"payload_json is not JSON: {exc}") from None
        object.__setattr__(self, "missed", _choice(Missed, self.missed, "missed"))
        object.__setattr__(self, "overlap", _choice(Overlap, self.overlap, "overlap"))
        object.__setattr__(self, "jitter", _seconds(self.jitter, "jitter"))
        object.__setattr__(self, "grace", _seconds(self.grace, "grace"))
        if (
            isinstance(self.trigger, Interval)
            and self.jitter >= self.trigger.period.total_seconds()
        ):
            raise InvalidScheduleError(
                f"jitter ({self.jitter} s) must be shorter than the interval "
                f"({self.trigger.period.total_seconds()} s)"
            )

    # Building

    @classmethod
    def every(
        cls,
        interval: float | timedelta,
        *,
        start: datetime | None = None,
        name: str | None = None,
        missed: Missed | str = Missed.RUN_ONCE,
        overlap: Overlap | str = Overlap.ALLOW,
        jitter: float | timedelta = 0.0,
        grace: float | timedelta = DEFAULT_GRACE,
    ) -> ScheduleBuilder:
        """Slots every `interval`, counted from `start` (default: the Unix epoch, UTC).

        `every(timedelta(minutes=5))` fires at :00, :05, :10… UTC, in every process alike.
        """
        period = to_period(interval)
        trigger = Interval(period) if start is None else Interval(period, start)
        return ScheduleBuilder(
            trigger, name=name, missed=missed, overlap=overlap, jitter=jitter, grace=grace
        )

    @classmethod
    def cron(
        cls,
        expression: str,
        *,
        tz: str = "UTC",
        name: str | None = None,
        missed: Missed | str = Missed.RUN_ONCE,
        overlap: Overlap | str = Overlap.ALLOW,
        jitter: float | timedelta = 0.0,
        grace: float | timedelta = DEFAULT_GRACE,
    ) -> ScheduleBuilder:
        """Slots from a cron expression (5 fields, or 6 with seconds first) in an IANA zone."""
        return ScheduleBuilder(
            Cron(expression, tz),
            name=name,
            missed=missed,
            overlap=overlap,
            jitter=jitter,
            grace=grace,
        )

    # What each slot becomes

    @property
    def payload(self) -> JSON:
        """A fresh copy of the payload every job of this schedule gets."""
        return json.loads(self.payload_json)

    def job_id(self, slot: datetime) -> str:
        """The id of this slot's job: the same in every process, so a slot has one job."""
        readable = f"schedule:{self.name}:{slot_text(slot)}"
        if len(readable) <= MAX_JOB_ID_LENGTH:
            return readable
        return f"schedule:{self.name[:64]}:{short_hash(self.name, slot_text(slot))[:40]}"

    def unique_key(self, slot: datetime) -> str:
        """The unique key of this slot's job (one for the whole schedule with `overlap="skip"`,
        so that a live job of the schedule holds back the next)."""
        if self.overlap is Overlap.SKIP:
            return f"schedule:{self.name}"
        return f"schedule:{self.name}:{slot_text(slot)}"

    def fire_time(self, slot: datetime) -> datetime:
        """When `slot` fires: the slot plus its jitter, which every replica computes alike."""
        if not self.jitter:
            return slot
        fraction = int(short_hash(self.name, slot_text(slot))[:16], 16) / 2**64
        return slot + timedelta(seconds=self.jitter * fraction)

    def describe(self) -> str:
        return f"{self.name}: {self.type} {self.trigger.describe()}"


class ScheduleBuilder:
    """`Schedule.every(...)` / `.cron(...)` so far; `.job(type, payload)` completes it."""

    def __init__(
        self,
        trigger: Trigger,
        *,
        name: str | None,
        missed: Missed | str,
        overlap: Overlap | str,
        jitter: float | timedelta,
        grace: float | timedelta,
        register: Scheduler | None = None,
    ) -> None:
        self.trigger = trigger
        self.name = name
        self.missed = _choice(Missed, missed, "missed")
        self.overlap = _choice(Overlap, overlap, "overlap")
        self.jitter = _seconds(jitter, "jitter")
        self.grace = _seconds(grace, "grace")
        self._register = register

    def job(
        self,
        type: str | Task[Any, Any],
        payload: JSON = None,
        *,
        queue: str | None = None,
        priority: int | None = None,
        max_attempts: int | None = None,
    ) -> Schedule:
        """Each slot enqueues `type` (a task name or a `Task`) with `payload` and options.

        Returns the `Schedule`; on a `Scheduler`, it is registered too.
        """
        if isinstance(type, Task):
            _check_arguments(type, payload)
            type_name = type.name
            queue = type.queue if queue is None else queue
            priority = type.priority if priority is None else priority
            max_attempts = type.max_attempts if max_attempts is None else max_attempts
        else:
            type_name = check_name(type, "task type")
        schedule = Schedule(
            name=self.name if self.name is not None else default_name(type_name, self.trigger),
            trigger=self.trigger,
            type=type_name,
            payload_json=encode_json(payload),
            queue="default" if queue is None else queue,
            priority=Priority.NORMAL if priority is None else priority,
            max_attempts=DEFAULT_MAX_ATTEMPTS if max_attempts is None else max_attempts,
            missed=self.missed,
            overlap=self.overlap,
            jitter=self.jitter,
            grace=self.grace,
        )
        return schedule if self._register is None else self._register.add(schedule)


def default_name(type: str, trigger: Trigger) -> str:
    """`<type>:<trigger>`, e.g. `cleanup:every:300s` or `report:cron:0_3_x_x_x:Europe.Berlin`."""
    name = f"{type}:{trigger.name_part()}"
    if len(name) > 128 or NAME_PATTERN.fullmatch(name) is None:
        name = f"{name[:111]}:{short_hash(name)[:16]}"
    return name


def _choice(kind: type[Missed] | type[Overlap], value: object, what: str) -> Any:
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return kind(value)
    except ValueError:
        known = ", ".join(repr(member.value) for member in kind)
        raise InvalidScheduleError(f"{what} must be one of {known}, not {value!r}") from None


def _seconds(value: object, what: str) -> float:
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise InvalidScheduleError(f"{what} must be seconds or a timedelta, not {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidScheduleError(f"{what} must be finite and >= 0, got {value!r}")
    return seconds


def _check_arguments(task: Task[Any, Any], payload: JSON) -> None:
    signature = inspect.signature(task.function)
    try:
        if isinstance(payload, dict):
            signature.bind(**payload)
        elif payload is None:
            signature.bind()
        else:
            signature.bind(payload)
    except TypeError as exc:
        raise InvalidOptionError(f"bad payload for task {task.name!r}: {exc}") from None


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """A schedule as one `Scheduler` sees it: `scheduler.schedules` returns these."""

    schedule: Schedule
    next_slot: datetime | None
    next_run: datetime | None
    """When the next slot fires (the slot plus its jitter)."""
    last_fire: Fire | None
    skipped: tuple[Skip, ...]
    """The latest skip records, oldest first."""
    fired: int
    """Jobs this scheduler enqueued."""
    skipped_slots: int
    """Slots this scheduler skipped, in all."""
    last_error: str | None
    """The error of the last attempt to fire, if it failed (cleared by the next success)."""

    @property
    def name(self) -> str:
        return self.schedule.name


# Clocks


class Clock(Protocol):
    """What the scheduler asks of time; inject a `ManualClock` in tests."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...

    async def sleep_until(self, deadline: datetime) -> None:
        """Return once `now() >= deadline`."""
        ...


class SystemClock:
    """The wall clock; sleeps in short naps so that clock changes and suspends are noticed."""

    max_nap = 30.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, deadline: datetime) -> None:
        while True:
            remaining = (deadline - self.now()).total_seconds()
            if remaining <= 0:
                return
            await anyio.sleep(min(remaining, self.max_nap))


@dataclass(eq=False)
class _Sleeper:
    deadline: datetime
    event: anyio.Event = field(default_factory=anyio.Event)


class ManualClock:
    """A clock that moves only when told: `set(...)`, `advance(...)`. For tests."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = (start or datetime(2024, 1, 1, tzinfo=UTC)).astimezone(UTC)
        self._sleepers: list[_Sleeper] = []
        self._changed: anyio.Event | None = None

    def now(self) -> datetime:
        return self._now

    async def sleep_until(self, deadline: datetime) -> None:
        while self._now < deadline:
            sleeper = _Sleeper(deadline)
            self._sleepers.append(sleeper)
            if self._changed is not None:
                self._changed.set()
                self._changed = None
            try:
                await sleeper.event.wait()
            finally:
                self._sleepers.remove(sleeper)

    def set(self, moment: datetime) -> None:
        """Jump to `moment` (backwards too), waking every sleeper whose deadline has come."""
        if moment.tzinfo is None:
            raise ValueError("ManualClock takes timezone-aware datetimes")
        self._now = moment.astimezone(UTC)
        for sleeper in self._sleepers:
            if sleeper.deadline <= self._now:
                sleeper.event.set()

    def advance(self, delta: float | timedelta) -> None:
        self.set(self._now + (delta if isinstance(delta, timedelta) else timedelta(seconds=delta)))

    @property
    def sleeping(self) -> list[datetime]:
        """Deadlines of the sleepers still waiting."""
        return [s.deadline for s in self._sleepers if s.deadline > self._now]

    async def wait_for_sleepers(self, count: int, *, timeout: float = 10.0) -> None:
        """Wait (in real time) until at least `count` tasks sleep on this clock."""
        with anyio.fail_after(timeout):
            while len(self.sleeping) < count:
                if self._changed is None:
                    self._changed = anyio.Event()
                await self._changed.wait()


# The scheduler


@dataclass(eq=False)
class _Entry:
    schedule: Schedule
    scope: anyio.CancelScope | None = None
    cursor: datetime | None = None
    """Every slot at or before it is dealt with; None until the scheduler has looked."""
    next_slot: datetime | None = None
    last_fire: Fire | None = None
    skipped: deque[Skip] = field(default_factory=lambda: deque(maxlen=KEPT_SKIPS))
    fired: int = 0
    skipped_slots: int = 0
    last_error: str | None = None


class Scheduler:
    """Fires schedules into `queue`: `async with Scheduler(queue) as scheduler:` runs it beside
    your code, `await scheduler.run()` in the foreground.

    Register with `scheduler.every(...).job(...)`, `scheduler.cron(...).job(...)` or
    `scheduler.add(schedule)`, before or while it runs. Any number of schedulers (tasks or
    processes) may run the same schedules on one backend: each slot gets one job.
    """

    def __init__(
        self,
        queue: Queue,
        schedules: Iterable[Schedule] = (),
        *,
        clock: Clock | None = None,
        retry_interval: float | timedelta = 1.0,
        max_retry_interval: float | timedelta = 30.0,
    ) -> None:
        self.queue = queue
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.retry_interval = _positive(retry_interval, "retry_interval")
        self.max_retry_interval = max(
            _positive(max_retry_interval, "max_retry_interval"), self.retry_interval
        )
        self._entries: dict[str, _Entry] = {}
        self._group: TaskGroup | None = None
        if isinstance(schedules, Schedule):
            raise InvalidScheduleError("schedules takes a list of Schedule, not one")
        for schedule in schedules:
            self.add(schedule)

    # Registering

    def every(
        self,
        interval: float | timedelta,
        *,
        start: datetime | None = None,
        name: str | None = None,
        missed: Missed | str = Missed.RUN_ONCE,
        overlap: Overlap | str = Overlap.ALLOW,
        jitter: float | timedelta = 0.0,
        grace: float | timedelta = DEFAULT_GRACE,
    ) -> ScheduleBuilder:
        """Like `Schedule.every`; `.job(...)` registers the schedule here."""
        builder = Schedule.every(
            interval,
            start=start,
            name=name,
            missed=missed,
            overlap=overlap,
            jitter=jitter,
            grace=grace,
        )
        builder._register = self
        return builder

    def cron(
        self,
        expression: str,
        *,
        tz: str = "UTC",
        name: str | None = None,
        missed: Missed | str = Missed.RUN_ONCE,
        overlap: Overlap | str = Overlap.ALLOW,
        jitter: float | timedelta = 0.0,
        grace: float | timedelta = DEFAULT_GRACE,
    ) -> ScheduleBuilder:
        """Like `Schedule.cron`; `.job(...)` registers the schedule here."""
        builder = Schedule.cron(
            expression,
            tz=tz,
            name=name,
            missed=missed,
            overlap=overlap,
            jitter=jitter,
            grace=grace,
        )
        builder._register = self
        return builder

    def add(self, schedule: Schedule) -> Schedule:
        """Register a schedule; names must be unique within a scheduler."""
        if not isinstance(schedule, Schedule):
            raise InvalidScheduleError(f"add() takes a Schedule, not {type(schedule).__name__}")
        if schedule.name in self._entries:
            raise InvalidScheduleError(
                f"a schedule named {schedule.name!r} is already registered: pass name=... "
                "to tell them apart"
            )
        size = len(schedule.payload_json.encode("utf-8"))
        if size > self.queue.max_payload_bytes:
            raise PayloadTooLargeError(
                f"schedule {schedule.name!r}: payload is {size} bytes encoded, over the "
                f"queue's limit of {self.queue.max_payload_bytes}"
            )
        entry = _Entry(schedule)
        self._entries[schedule.name] = entry
        if self._group is not None:
            self._start(entry)
        return schedule

    def remove(self, name: str) -> None:
        """Stop and forget a schedule (its jobs stay); `KeyError` if there is none."""
        entry = self._entries.pop(name)
        if entry.scope is not None:
            entry.scope.cancel()

    # Introspection

    @property
    def schedules(self) -> list[ScheduleState]:
        """Every registered schedule with its next run, last fire and skipped slots."""
        return [self._state(entry) for entry in self._entries.values()]

    def state(self, name: str) -> ScheduleState:
        """One schedule's state; `KeyError` if there is none."""
        return self._state(self._entries[name])

    def _state(self, entry: _Entry) -> ScheduleState:
        schedule = entry.schedule
        next_slot = entry.next_slot
        if next_slot is None:
            next_slot = schedule.trigger.next_after(entry.cursor or self.clock.now())
        return ScheduleState(
            schedule=schedule,
            next_slot=next_slot,
            next_run=None if next_slot is None else schedule.fire_time(next_slot),
            last_fire=entry.last_fire,
            skipped=tuple(entry.skipped),
            fired=entry.fired,
            skipped_slots=entry.skipped_slots,
            last_error=entry.last_error,
        )

    @property
    def running(self) -> bool:
        return self._group is not None

    # Running

    async def __aenter__(self) -> Self:
        if self._group is not None:
            raise RuntimeError("this Scheduler is already running")
        group = anyio.create_task_group()
        await group.__aenter__()
        self._group = group
        for entry in self._entries.values():
            self._start(entry)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        group = self._group
        assert group is not None
        group.cancel_scope.cancel()
        try:
            return await group.__aexit__(exc_type, exc, traceback)
        finally:
            self._group = None

    async def run(self) -> None:
        """Run until cancelled."""
        async with self:
            await anyio.sleep_forever()

    def _start(self, entry: _Entry) -> None:
        assert self._group is not None
        entry.scope = scope = anyio.CancelScope()
        entry.cursor = None
        entry.next_slot = None
        self._group.start_soon(self._drive, entry, scope, name=f"schedule {entry.schedule.name}")

    async def _drive(self, entry: _Entry, scope: anyio.CancelScope) -> None:
        schedule = entry.schedule
        log = logging.LoggerAdapter(logger, {"schedule": schedule.name})
        failures = 0
        with scope:
            while True:
                try:
                    if entry.cursor is None:
                        await self._resume(entry, log)
                        continue
                    slot = schedule.trigger.next_after(entry.cursor)
                    entry.next_slot = slot
                    if slot is None:
                        log.info("schedule %s has no slots left", schedule.describe())
                        return
                    await self.clock.sleep_until(schedule.fire_time(slot))
                    await self._run_due(entry, log)
                    failures, entry.last_error = 0, None
                except Exception as exc:
                    failures += 1
                    delay = min(self.retry_interval * 2 ** (failures - 1), self.max_retry_interval)
                    entry.last_error = f"{type(exc).__name__}: {exc}"
                    if isinstance(exc, BackendUnavailableError):
                        log.warning("backend unavailable, retrying in %.3g s: %s", delay, exc)
                    else:
                        log.exception(
                            "schedule %s failed, retrying in %.3g s", schedule.name, delay
                        )
                    await self.clock.sleep_until(self.clock.now() + timedelta(seconds=delay))

    def _latest_due(
        self, schedule: Schedule, now: datetime, after: datetime | None
    ) -> datetime | None:
        """The latest slot after `after` whose fire time (slot + jitter) has come."""
        slot = schedule.trigger.latest_at_or_before(now)
        candidates: Iterator[datetime] = iter(())
        if slot is not None and schedule.fire_time(slot) > now:
            candidates = schedule.trigger.before(slot)
            slot = next(candidates, None)
        for _ in range(PROBE_DEPTH):
            if slot is None or (after is not None and slot <= after):
                return None
            if schedule.fire_time(slot) <= now:
                return slot
            slot = next(candidates, None)
        return None

    async def _resume(self, entry: _Entry, log: logging.LoggerAdapter[logging.Logger]) -> None:
        """Find where this schedule stands, from the backend: has its latest slot fired?"""
        schedule = entry.schedule
        now = self.clock.now()
        latest = self._latest_due(schedule, now, None)
        if latest is None:
            entry.cursor = now
            return
        job = await self.queue.backend.get_job(schedule.job_id(latest))
        if job is not None:
            entry.last_fire = Fire(latest, job.id, now, by_this_scheduler=False)
            entry.cursor = latest
            return
        history = await self._last_run_before(schedule, latest)
        if history is not None:
            slot, job = history
            entry.last_fire = Fire(slot, job.id, now, by_this_scheduler=False)
            entry.cursor = slot
        elif (now - schedule.fire_time(latest)).total_seconds() <= schedule.grace:
            entry.cursor = latest - timedelta(microseconds=1)
        else:
            log.info(
                "no earlier run of %s found: its first run is the next slot",
                schedule.describe(),
            )
            entry.cursor = latest

    async def _last_run_before(
        self, schedule: Schedule, latest: datetime
    ) -> tuple[datetime, Job] | None:
        """The newest slot before `latest` that has a job, looking back up to PROBE_DEPTH slots.

        It looks at each of the last PROBE_EACH slots, then 32, 64, 128… back, then
        binary-searches between the last miss and the first hit.
        """
        earlier = _Slots(schedule.trigger.before(latest))
        backend = self.queue.backend
        miss, hit = -1, None
        index = 0
        while index < PROBE_DEPTH:
            slot = earlier.get(index)
            if slot is None:
                break
            job = await backend.get_job(schedule.job_id(slot))
            if job is not None:
                hit = (index, slot, job)
                break
            miss = index
            index = index + 1 if index + 1 < PROBE_EACH else 2 * index + 1
        if hit is None:
            return None
        index, slot, job = hit
        while index - miss > 1:
            middle = (index + miss) // 2
            candidate = earlier.get(middle)
            assert candidate is not None
            found = await backend.get_job(schedule.job_id(candidate))
            if found is not None:
                index, slot, job = middle, candidate, found
            else:
                miss = middle
        return slot, job

    async def _run_due(self, entry: _Entry, log: logging.LoggerAdapter[logging.Logger]) -> None:
        """Deal with every slot that has come since the cursor: at most one enqueue."""
        schedule = entry.schedule
        trigger = schedule.trigger
        cursor = entry.cursor
        assert cursor is not None
        now = self.clock.now()
        latest = self._latest_due(schedule, now, cursor)
        if latest is None:
            return
        missed = trigger.count_between(cursor, latest, MAX_COUNTED)
        lateness = (now - schedule.fire_time(latest)).total_seconds()
        if lateness > schedule.grace and schedule.missed is Missed.SKIP:
            first = trigger.next_after(cursor) or latest
            self._skip(entry, Skip(first, latest, missed + 1, SkipReason.MISSED), log)
            entry.cursor = latest
            return
        coalesced = missed if schedule.missed is Missed.RUN_ONCE else 0
        await self._fire(entry, latest, coalesced, log)
        if missed:
            first = trigger.next_after(cursor) or latest
            last = next(trigger.before(latest), first)
            if schedule.missed is Missed.SKIP:
                self._skip(entry, Skip(first, last, missed, SkipReason.MISSED), log)
            else:
                log.warning(
                    "%s slots from %s to %s passed unfired by this scheduler: "
                    "slot %s stands in for them",
                    f"{missed}+" if missed >= MAX_COUNTED else missed,
                    slot_text(first),
                    slot_text(last),
                    slot_text(latest),
                )
        entry.cursor = latest

    async def _fire(
        self,
        entry: _Entry,
        slot: datetime,
        coalesced: int,
        log: logging.LoggerAdapter[logging.Logger],
    ) -> None:
        """Enqueue the slot's job unless it exists; a duplicate id means another fired it."""
        schedule = entry.schedule
        backend = self.queue.backend
        job_id = schedule.job_id(slot)
        existing = await backend.get_job(job_id)
        if existing is None:
            try:
                job = await self.queue.enqueue(
                    schedule.type,
                    schedule.payload,
                    queue=schedule.queue,
                    priority=schedule.priority,
                    max_attempts=schedule.max_attempts,
                    unique_key=schedule.unique_key(slot),
                    id=job_id,
                )
            except InvalidOptionError as exc:
                # The id is taken: its job finished (freeing the unique key) before we came.
                # The request was validated at registration, so a taken id is the one reason
                # the backend can refuse it: the slot has fired, even if the lookup misses.
                existing = await backend.get_job(job_id)
                if existing is None:
                    log.warning(
                        "slot %s: the backend refused id %s (%s)", slot_text(slot), job_id, exc
                    )
                    entry.last_fire = Fire(slot, job_id, self.clock.now(), False, coalesced)
                    return
            else:
                if job.id == job_id:
                    entry.last_fire = Fire(slot, job_id, self.clock.now(), True, coalesced)
                    entry.fired += 1
                    log.info("fired slot %s of %s: job %s", slot_text(slot), schedule.name, job_id)
                    return
                if schedule.overlap is Overlap.SKIP:
                    skip = Skip(slot, slot, 1, SkipReason.OVERLAP, job.id)
                    self._skip(entry, skip, log)
                    return
                existing = job  # another job holds this slot's key: it stands for the slot
        entry.last_fire = Fire(slot, existing.id, self.clock.now(), False, coalesced)
        log.debug(
            "slot %s of %s was already fired: job %s", slot_text(slot), schedule.name, existing.id
        )

    def _skip(self, entry: _Entry, skip: Skip, log: logging.LoggerAdapter[logging.Logger]) -> None:
        entry.skipped.append(skip)
        entry.skipped_slots += skip.count
        if skip.reason is SkipReason.OVERLAP:
            log.info(
                "skipped slot %s of %s: job %s has not finished",
                slot_text(skip.last),
                entry.schedule.name,
                skip.job_id,
            )
        else:
            log.warning(
                "skipped %d missed slots of %s, from %s to %s",
                skip.count,
                entry.schedule.name,
                slot_text(skip.first),
                slot_text(skip.last),
            )


class _Slots:
    """A lazily read list of slots from an iterator."""

    def __init__(self, slots: Iterator[datetime]) -> None:
        self._slots = slots
        self._seen: list[datetime] = []

    def get(self, index: int) -> datetime | None:
        while len(self._seen) <= index:
            slot = next(self._slots, None)
            if slot is None:
                return None
            self._seen.append(slot)
        return self._seen[index]


def _positive(value: float | timedelta, what: str) -> float:
    seconds = _seconds(value, what)
    if seconds <= 0:
        raise InvalidOptionError(f"{what} must be > 0, got {value!r}")
    return seconds


__all__ = [
    "Clock",
    "Cron",
    "Fire",
    "Interval",
    "ManualClock",
    "Missed",
    "Overlap",
    "Schedule",
    "ScheduleBuilder",
    "ScheduleState",
    "Scheduler",
    "Skip",
    "SkipReason",
    "SystemClock",
    "default_name",
]

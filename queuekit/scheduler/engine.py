"""The `Scheduler` engine: one task per schedule, sleeping until its next slot, then firing it.

Run a `Scheduler` in every replica of a service if you like: there is no leader. Every slot
has an identity (schedule name + slot instant) and its job is enqueued with an `id` and a
`unique_key` derived from it, so the backend itself keeps one job per slot however many
schedulers try. See docs/scheduler.md for the whole design.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self, Unpack

import anyio
from anyio.abc import TaskGroup

from ..errors import (
    BackendUnavailableError,
    InvalidOptionError,
    InvalidScheduleError,
    JobExistsError,
    PayloadTooLargeError,
)
from ..queue import Queue
from .clocks import Clock, SystemClock
from .history import last_run_before, latest_due
from .options import CronKeywords, EveryKeywords, Missed, Overlap, seconds
from .schedule import Schedule, ScheduleBuilder
from .state import Fire, ScheduleState, Skip, SkipReason
from .triggers import slot_text

logger = logging.getLogger("queuekit.scheduler")

MAX_COUNTED = 10_000
"""Missed slots are counted up to this many."""
KEPT_SKIPS = 50
"""How many skip records introspection keeps per schedule."""
SCHEDULER_HEADER = "queuekit-scheduler"
"""The header naming the scheduler that stored a slot's job. Replicas racing for a slot send
the same id, and the losers get the winner's job back: this is how each tells whose it is."""


@dataclass(eq=False)
class _Entry:
    """One registered schedule and where this scheduler stands with it."""

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
        self.scheduler_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        """Sent with every job it enqueues, in the `queuekit-scheduler` header."""
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
        self, interval: float | timedelta, **options: Unpack[EveryKeywords]
    ) -> ScheduleBuilder:
        """Like `Schedule.every`; `.job(...)` registers the schedule here."""
        return Schedule.every(interval, **options).registering(self.add)

    def cron(self, expression: str, **options: Unpack[CronKeywords]) -> ScheduleBuilder:
        """Like `Schedule.cron`; `.job(...)` registers the schedule here."""
        return Schedule.cron(expression, **options).registering(self.add)

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

    async def _resume(self, entry: _Entry, log: logging.LoggerAdapter[logging.Logger]) -> None:
        """Find where this schedule stands, from the backend: has its latest slot fired?"""
        schedule = entry.schedule
        now = self.clock.now()
        latest = latest_due(schedule, now, None)
        if latest is None:
            entry.cursor = now
            return
        job = await self.queue.backend.get_job(schedule.job_id(latest))
        if job is not None:
            entry.last_fire = Fire(latest, job.id, now, by_this_scheduler=False)
            entry.cursor = latest
            return
        history = await last_run_before(self.queue.backend, schedule, latest)
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

    async def _run_due(self, entry: _Entry, log: logging.LoggerAdapter[logging.Logger]) -> None:
        """Deal with every slot that has come since the cursor: at most one enqueue."""
        schedule = entry.schedule
        trigger = schedule.trigger
        cursor = entry.cursor
        assert cursor is not None
        now = self.clock.now()
        latest = latest_due(schedule, now, cursor)
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
        job_id = schedule.job_id(slot)
        holder = job_id  # the job that stands for the slot when this scheduler did not fire it
        if await self.queue.backend.get_job(job_id) is None:
            try:
                job = await self.queue.enqueue(
                    schedule.type,
                    schedule.payload,
                    queue=schedule.queue,
                    priority=schedule.priority,
                    max_attempts=schedule.max_attempts,
                    unique_key=schedule.unique_key(slot),
                    id=job_id,
                    headers={SCHEDULER_HEADER: self.scheduler_id},
                )
            except JobExistsError:
                # The slot's job was stored since the lookup, or finished (freeing the unique
                # key) before we came: either way the slot has fired.
                pass
            else:
                if job.id == job_id and job.headers.get(SCHEDULER_HEADER) == self.scheduler_id:
                    entry.last_fire = Fire(slot, job_id, self.clock.now(), True, coalesced)
                    entry.fired += 1
                    log.info("fired slot %s of %s: job %s", slot_text(slot), schedule.name, job_id)
                    return
                if job.id != job_id and schedule.overlap is Overlap.SKIP:
                    skip = Skip(slot, slot, 1, SkipReason.OVERLAP, job.id)
                    self._skip(entry, skip, log)
                    return
                # A racing replica stored the slot's job, or another job holds the slot's key:
                # either stands for the slot.
                holder = job.id
        entry.last_fire = Fire(slot, holder, self.clock.now(), False, coalesced)
        log.debug("slot %s of %s was already fired: job %s", slot_text(slot), schedule.name, holder)

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


def _positive(value: float | timedelta, what: str) -> float:
    positive = seconds(value, what)
    if positive <= 0:
        raise InvalidOptionError(f"{what} must be > 0, got {value!r}")
    return positive


__all__ = ["SCHEDULER_HEADER", "Scheduler"]

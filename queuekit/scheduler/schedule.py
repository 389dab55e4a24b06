"""`Schedule`, a recurring job as a value, and the builder `Schedule.every(...).job(...)`."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Self, Unpack

from ..errors import InvalidOptionError, InvalidPayloadError, InvalidScheduleError
from ..job import JSON, Priority
from ..tasks import Task
from ..validation import (
    DEFAULT_MAX_ATTEMPTS,
    MAX_JOB_ID_LENGTH,
    NAME_PATTERN,
    check_max_attempts,
    check_name,
    check_priority,
    encode_json,
)
from .options import (
    CronKeywords,
    EveryKeywords,
    Overlap,
    ScheduleKeywords,
    ScheduleOptions,
)
from .triggers import Cron, Interval, Trigger, short_hash, slot_text, to_period


@dataclass(frozen=True)
class Schedule(ScheduleOptions):
    """A recurring job: what to enqueue (`type`, payload, options) and when (`trigger`).

    Build one with `Schedule.every(...)` or `Schedule.cron(...)` then `.job(type, payload)`;
    a list of them can be handed to `Scheduler(queue, schedules)` or
    `Worker(queue, tasks, schedules=...)`. The `name` identifies the schedule across processes
    and restarts: keep it stable. How it fires (`missed`, `overlap`, `jitter`, `grace`) are
    the keyword-only fields it has from `ScheduleOptions`.
    """

    name: str
    trigger: Trigger
    type: str
    payload_json: str = "null"
    queue: str = "default"
    priority: int = Priority.NORMAL
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

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
        super().__post_init__()
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
        cls, interval: float | timedelta, **options: Unpack[EveryKeywords]
    ) -> ScheduleBuilder:
        """Slots every `interval`, counted from `start=` (default: the Unix epoch, UTC).

        `every(timedelta(minutes=5))` fires at :00, :05, :10… UTC, in every process alike.
        The other keywords are `ScheduleKeywords` (`name`, `missed`, `overlap`, `jitter`,
        `grace`).
        """
        period = to_period(interval)
        start: datetime | None = options.pop("start", None)
        trigger = Interval(period) if start is None else Interval(period, start)
        return ScheduleBuilder(trigger, options)

    @classmethod
    def cron(cls, expression: str, **options: Unpack[CronKeywords]) -> ScheduleBuilder:
        """Slots from a cron expression (5 fields, or 6 with seconds first) in the IANA zone
        `tz=` (default UTC). The other keywords are `ScheduleKeywords`, as for `every`."""
        trigger = Cron(expression, options.pop("tz")) if "tz" in options else Cron(expression)
        return ScheduleBuilder(trigger, options)

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

    def __init__(self, trigger: Trigger, keywords: ScheduleKeywords) -> None:
        self.trigger = trigger
        self.name = keywords.get("name")
        self.options = ScheduleOptions.from_keywords(keywords)
        self._register: Callable[[Schedule], Schedule] | None = None

    def registering(self, register: Callable[[Schedule], Schedule]) -> Self:
        """Have `.job(...)` hand its schedule to `register` too (`Scheduler.add`)."""
        self._register = register
        return self

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
            **asdict(self.options),
        )
        return schedule if self._register is None else self._register(schedule)


def default_name(type: str, trigger: Trigger) -> str:
    """`<type>:<trigger>`, e.g. `cleanup:every:300s` or `report:cron:0_3_x_x_x:Europe.Berlin`."""
    name = f"{type}:{trigger.name_part()}"
    if len(name) > 128 or NAME_PATTERN.fullmatch(name) is None:
        name = f"{name[:111]}:{short_hash(name)[:16]}"
    return name


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


__all__ = ["Schedule", "ScheduleBuilder", "default_name"]

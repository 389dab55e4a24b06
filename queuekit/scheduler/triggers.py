"""Triggers: when a schedule's slots fall. `Interval` (a fixed period) and `Cron` (cronsim).

A slot is an instant (an aware UTC `datetime`). Every process computes the same slots from
the same trigger, without talking to the others: intervals count whole periods from a fixed
anchor (the Unix epoch unless `start=` is given), and cron slots come from the expression and
its IANA time zone. That is what lets many schedulers agree on "slot 03:00" and fire it once.

DST, for cron expressions whose hour field is restricted (does not start with `*`), follows
the wall clock: each local time the expression names fires once per day. A time that does not
exist (skipped when clocks spring forward) fires at the transition instant; a time that occurs
twice (clocks fall back) fires at the earlier instant. Expressions with a wildcard hour
(`*/15 * * * *`, `0 * * * *`, `0 */2 * * *`) follow elapsed time instead: they fire at every
real instant whose local time matches, so an hourly job runs every real hour, twice through
"02:00" on the night the clocks fall back and not at all at the skipped "02:00".
"""

from __future__ import annotations

import abc
import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from ..errors import InvalidScheduleError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
MIN_INTERVAL = timedelta(milliseconds=1)
"""The shortest interval: anything shorter would only busy-loop."""
MAX_CRON_STEPS = 100_000
"""How many matches a cron search looks through before it gives up on one question."""

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_NAME_CHARACTERS = {" ": "_", "*": "x", "?": "x", "/": ".", ",": ".", "#": ".", "+": "p", "@": ""}


def _aware(value: object, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidScheduleError(f"{what} must be a timezone-aware datetime, not {value!r}")
    return value.astimezone(UTC)


def to_period(value: object) -> timedelta:
    """An interval given as seconds or a `timedelta`, checked: finite and at least 1 ms."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise InvalidScheduleError(f"interval must be a finite duration, got {value!r}")
        try:
            value = timedelta(seconds=value)
        except OverflowError:
            raise InvalidScheduleError(f"interval {value!r} is too long") from None
    if not isinstance(value, timedelta):
        raise InvalidScheduleError(
            f"interval must be seconds or a timedelta, not {type(value).__name__}"
        )
    if value < MIN_INTERVAL:
        raise InvalidScheduleError(
            f"interval must be at least {MIN_INTERVAL.total_seconds()} s, got {value}"
        )
    return value


def slot_text(slot: datetime) -> str:
    """A slot as stable text: UTC ISO 8601, microseconds only when there are some."""
    slot = slot.astimezone(UTC)
    text = slot.strftime("%Y-%m-%dT%H:%M:%S")
    if slot.microsecond:
        text += f".{slot.microsecond:06d}"
    return text + "Z"


def name_part(text: str) -> str:
    """`text` squeezed into the characters names allow: `[A-Za-z0-9_.:-]`."""
    out = []
    for char in " ".join(text.split()):
        if char.isascii() and (char.isalnum() or char in "_.:-"):
            out.append(char)
        else:
            out.append(_NAME_CHARACTERS.get(char, "."))
    return "".join(out)


def short_hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


class Trigger(abc.ABC):
    """When a schedule's slots fall. Every method takes and returns aware UTC datetimes."""

    @abc.abstractmethod
    def next_after(self, moment: datetime) -> datetime | None:
        """The first slot strictly after `moment`, or None if there is none."""

    @abc.abstractmethod
    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        """The last slot at or before `moment`, or None if there is none."""

    @abc.abstractmethod
    def before(self, slot: datetime) -> Iterator[datetime]:
        """The slots strictly before `slot`, newest first."""

    @abc.abstractmethod
    def describe(self) -> str:
        """A short human description, for logs and introspection."""

    @abc.abstractmethod
    def name_part(self) -> str:
        """This trigger's part of a schedule's default name."""

    def count_between(self, after: datetime, before: datetime, limit: int) -> int:
        """How many slots lie strictly between `after` and `before`, counting up to `limit`."""
        count = 0
        slot = self.next_after(after)
        while slot is not None and slot < before and count < limit:
            count += 1
            slot = self.next_after(slot)
        return count


@dataclass(frozen=True)
class Interval(Trigger):
    """A slot every `period`, counted from `start` (the Unix epoch by default).

    Anchoring on a fixed instant, not on when a process started, is what makes every replica
    compute the same slots: `every(timedelta(minutes=5))` fires at :00, :05, :10… UTC.
    """

    period: timedelta
    start: datetime = EPOCH

    def __post_init__(self) -> None:
        period = to_period(self.period)
        object.__setattr__(self, "period", period)
        object.__setattr__(self, "start", _aware(self.start, "start"))

    @property
    def _period_us(self) -> int:
        return self.period // MICROSECOND

    def _index(self, moment: datetime) -> int:
        """The number of the last slot at or before `moment` (-1 if before the first)."""
        return ((moment - self.start) // MICROSECOND) // self._period_us

    def _slot(self, index: int) -> datetime:
        return self.start + MICROSECOND * (index * self._period_us)

    def next_after(self, moment: datetime) -> datetime | None:
        return self._slot(max(self._index(moment) + 1, 0))

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        index = self._index(moment)
        return self._slot(index) if index >= 0 else None

    def before(self, slot: datetime) -> Iterator[datetime]:
        index = self._index(slot - MICROSECOND)
        while index >= 0:
            yield self._slot(index)
            index -= 1

    def count_between(self, after: datetime, before: datetime, limit: int) -> int:
        if before <= after:
            return 0
        first = max(self._index(after) + 1, 0)
        last = self._index(before - MICROSECOND)
        return max(0, min(last - first + 1, limit))

    def describe(self) -> str:
        text = f"every {_seconds_text(self.period)} s"
        return text if self.start == EPOCH else f"{text} from {slot_text(self.start)}"

    def name_part(self) -> str:
        text = f"every:{_seconds_text(self.period)}s"
        return text if self.start == EPOCH else f"{text}:from:{name_part(slot_text(self.start))}"


def _seconds_text(period: timedelta) -> str:
    whole, micro = divmod(period // MICROSECOND, 1_000_000)
    return f"{whole}.{micro:06d}".rstrip("0").rstrip(".") if micro else str(whole)


@dataclass(frozen=True)
class Cron(Trigger):
    """Slots from a cron expression, in an IANA time zone (UTC by default).

    Five fields (minute hour day-of-month month day-of-week) or six with seconds first; names
    (`MON`, `JAN`), `L`, `W`, `#` and the `@daily`-style aliases work. When both the
    day-of-month and day-of-week fields are restricted (neither starts with `*`), a day
    matches if either does, as in cron. An expression that never fires is rejected.
    """

    expression: str
    tz: str = "UTC"
    _fields: str = field(init=False, repr=False, compare=False, default="")
    _zone: ZoneInfo = field(init=False, repr=False, compare=False, default=ZoneInfo("UTC"))
    _wall_clock: bool = field(init=False, repr=False, compare=False, default=False)

    def __post_init__(self) -> None:
        if not isinstance(self.expression, str) or not self.expression.strip():
            raise InvalidScheduleError(
                f"a cron expression must be a non-empty string, not {self.expression!r}"
            )
        expression = " ".join(self.expression.split())
        fields = ALIASES.get(expression.lower(), expression)
        if fields.startswith("@"):
            known = ", ".join(ALIASES)
            raise InvalidScheduleError(f"unknown cron alias {expression!r}; use one of {known}")
        tz = self.tz.key if isinstance(self.tz, ZoneInfo) else self.tz
        if not isinstance(tz, str):
            raise InvalidScheduleError(f"tz must be an IANA time zone name, not {tz!r}")
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidScheduleError(
                f"unknown time zone {tz!r}: use an IANA name such as 'Europe/Berlin' or 'UTC'"
            ) from None
        parts = fields.split()
        if len(parts) not in (5, 6):
            raise InvalidScheduleError(
                f"malformed cron expression {self.expression!r}: it has {len(parts)} fields; "
                "use 5 (minute hour day month weekday) or 6 (seconds first)"
            )
        hour = parts[-4]
        object.__setattr__(self, "expression", expression)
        object.__setattr__(self, "tz", tz)
        object.__setattr__(self, "_fields", fields)
        object.__setattr__(self, "_zone", zone)
        object.__setattr__(self, "_wall_clock", tz != "UTC" and not hour.startswith("*"))
        try:
            CronSim(fields, datetime(2000, 1, 1))
        except (CronSimError, ValueError, IndexError) as exc:
            if _parses(" ".join([*parts[:-2], "*", parts[-1]])):
                raise InvalidScheduleError(
                    f"cron expression {self.expression!r} never fires: "
                    f"no month it names has day {parts[-3]}"
                ) from None
            raise InvalidScheduleError(
                f"malformed cron expression {self.expression!r}: {exc}"
            ) from None
        if self.next_after(datetime.now(UTC)) is None:
            raise InvalidScheduleError(f"cron expression {self.expression!r} never fires")

    # Iterating

    def _matches(self, moment: datetime, *, reverse: bool) -> Iterator[datetime]:
        """Matching instants from `moment` on (or back), in the order cronsim finds them."""
        if self._wall_clock:
            local = moment.astimezone(self._zone).replace(tzinfo=None)
            for naive in _limited(CronSim(self._fields, local, reverse=reverse)):
                yield self._instant(naive)
        else:
            for found in _limited(CronSim(self._fields, moment.astimezone(self._zone), reverse)):
                yield found.astimezone(UTC)

    def _instant(self, naive: datetime) -> datetime:
        """The instant a wall-clock time names: the earlier one if repeated, else the
        transition if it falls in a gap."""
        earlier = naive.replace(tzinfo=self._zone, fold=0).astimezone(UTC)
        if earlier.astimezone(self._zone).replace(tzinfo=None) == naive:
            return earlier
        # In a gap: fold=0 reads it with the offset before the jump, fold=1 with the one after.
        low = naive.replace(tzinfo=self._zone, fold=1).astimezone(UTC)
        high = earlier
        if low > high:
            low, high = high, low
        offset = low.astimezone(self._zone).utcoffset()
        while high - low > MICROSECOND:
            middle = low + (high - low) // 2
            if middle.astimezone(self._zone).utcoffset() == offset:
                low = middle
            else:
                high = middle
        return high

    def next_after(self, moment: datetime) -> datetime | None:
        for found in self._matches(moment, reverse=False):
            if found > moment:
                return found
        return None

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        candidate = None
        for found in self._matches(moment + MICROSECOND, reverse=True):
            if found <= moment:
                candidate = found
                break
        if candidate is None:
            return None
        # Around a fall-back the wall clock repeats: a later slot may still be at or before.
        while (following := self.next_after(candidate)) is not None and following <= moment:
            candidate = following
        return candidate

    def before(self, slot: datetime) -> Iterator[datetime]:
        last = slot
        for found in self._matches(slot, reverse=True):
            if found < last:
                last = found
                yield found

    def describe(self) -> str:
        return f"cron {self.expression!r}" + ("" if self.tz == "UTC" else f" in {self.tz}")

    def name_part(self) -> str:
        text = f"cron:{name_part(self.expression)}"
        return text if self.tz == "UTC" else f"{text}:{name_part(self.tz)}"


def _parses(fields: str) -> bool:
    try:
        CronSim(fields, datetime(2000, 1, 1))
    except (CronSimError, ValueError, IndexError):
        return False
    return True


def _limited(matches: CronSim) -> Iterator[datetime]:
    """cronsim's matches, stopping after `MAX_CRON_STEPS` or when it finds no more."""
    for _ in range(MAX_CRON_STEPS):
        try:
            yield next(matches)
        except (StopIteration, OverflowError, ValueError):
            return


__all__ = ["EPOCH", "Cron", "Interval", "Trigger", "slot_text"]

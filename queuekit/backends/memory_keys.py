"""The memory backend's unique and debounce keys: who holds each, for how long, and the
rewrite of a holder an enqueue finds (`Backend`'s "Unique keys")."""

from __future__ import annotations

import abc
from typing import Any

from ..backend import Backend
from ..job import (
    CLAIMABLE_STATUSES,
    LIVE_STATUSES,
    REPLACEABLE_STATUSES,
    UNSTARTED_STATUSES,
    NewJob,
    OnConflict,
)

Record = dict[str, Any]
Holders = dict[tuple[str, str], str]
"""(queue, key): the id of the job that held the key last; `_holder` says if it still does."""


class MemoryKeys(Backend):
    """Unique and debounce keys for `MemoryBackend`, held as the contract says and checked
    when read: a hold that is over is let go by the call that finds it."""

    _jobs: dict[str, Record]
    _unique: Holders
    _debounce: Holders
    _rewrites: list[tuple[Record, str, float]] | None = None
    """Within an `enqueue_many`: each holder it rewrote, with its payload and time before."""

    @abc.abstractmethod
    def _make_claimable(self, record: Record) -> None: ...

    def _holder(self, field: str, queue: str, key: str | None, now: float) -> Record | None:
        """The job that holds `key` of `field` (unique_key or debounce_key) in `queue`, or None."""
        if key is None:
            return None
        holders = self._holders()[field]
        holder = self._jobs.get(holders.get((queue, key), ""))
        if holder is not None and _holds(holder, field, now):
            return holder
        holders.pop((queue, key), None)
        return None

    def _found(self, new: NewJob, scheduled_at: float, now: float) -> Record | None:
        """The job holding the new request's key, rewritten as its options say, or None when
        no job holds it (the request is to be stored)."""
        holder = self._holder("unique_key", new.queue, new.unique_key, now)
        if holder is not None:
            if new.on_conflict == OnConflict.REPLACE:
                self._rewrite(holder, new, scheduled_at)
            return holder
        holder = self._holder("debounce_key", new.queue, new.debounce_key, now)
        if holder is not None:
            until = holder["debounce_until"]
            self._rewrite(holder, new, scheduled_at if until is None else min(scheduled_at, until))
        return holder

    def _rewrite(self, holder: Record, new: NewJob, scheduled_at: float) -> None:
        if holder["status"] not in REPLACEABLE_STATUSES:
            return
        if self._rewrites is not None:
            self._rewrites.append((holder, holder["payload"], holder["scheduled_at"]))
        holder.update(payload=new.payload_json, scheduled_at=scheduled_at)
        if holder["status"] in CLAIMABLE_STATUSES:
            self._make_claimable(holder)  # its entry at the old time goes stale

    def _undo_rewrites(self) -> None:
        for holder, payload, scheduled_at in reversed(self._rewrites or ()):
            holder.update(payload=payload, scheduled_at=scheduled_at)
            if holder["status"] in CLAIMABLE_STATUSES:
                self._make_claimable(holder)

    def _holders(self) -> dict[str, Holders]:
        """Each key field with its holders."""
        return {"unique_key": self._unique, "debounce_key": self._debounce}

    def _hold_keys(self, record: Record) -> None:
        for field, holders in self._holders().items():
            if record[field] is not None:
                holders[(record["queue"], record[field])] = record["id"]

    def _hold_unique(self, record: Record) -> bool:
        """Take the job's keys back for it (a replay); False, taking none, if another job
        holds one of them."""
        now = self._now()
        for field in self._holders():
            holder = self._holder(field, record["queue"], record[field], now)
            if holder is not None and holder is not record:
                return False
        self._hold_keys(record)
        return True

    def _let_go(self, record: Record) -> None:
        """Forget the keys the job holds (it is deleted)."""
        for field, holders in self._holders().items():
            key = (record["queue"], record[field])
            if holders.get(key) == record["id"]:
                del holders[key]

    @abc.abstractmethod
    def _now(self) -> float: ...


def _holds(record: Record, field: str, now: float) -> bool:
    """Whether the job holds its key of `field` now (`Backend`'s "Unique keys")."""
    status = record["status"]
    if field == "debounce_key":
        return status in UNSTARTED_STATUSES
    if status in LIVE_STATUSES:
        return True
    until = record["unique_until"]
    return status in record["unique_states"] and (until is None or now < until)


def keeps_key(record: Record, now: float) -> bool:
    """Whether `prune` must keep the finished job: its unique key's period is not over."""
    until = record["unique_until"]
    return until is not None and now < until and record["status"] in record["unique_states"]

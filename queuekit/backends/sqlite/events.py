"""`FileEvents`: a SQLite backend's events, shared by every backend of its database file in
this process. SQLite cannot signal across processes: another process's subscribers get none."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from weakref import WeakValueDictionary

from ...backend import Backend
from ...events import RELEASED, Event, EventHub, EventKind
from ..times import stored_time

IN_MEMORY = ":memory:"

_hubs: WeakValueDictionary[str, EventHub] = WeakValueDictionary()
"""The subscribers of each database file in this process, by its real path."""


class FileEvents(Backend):
    """The in-process events of `Backend`, with one hub per database file (an in-memory
    database, which no other connection sees, has its own)."""

    path: str

    def event_hub(self) -> EventHub:
        if self._event_hub is None:
            if self.path == IN_MEMORY:
                self._event_hub = EventHub()
            else:
                key = os.path.realpath(self.path)
                hub = _hubs.get(key)
                if hub is None:
                    hub = _hubs[key] = EventHub()
                self._event_hub = hub
        return self._event_hub

    def events_wanted(self) -> bool:
        return bool(self.event_hub().sinks)

    def _announce_decided(self, rows: Iterable[sqlite3.Row]) -> None:
        """Announce what migration 15's triggers decided for dependents, as queries.sql's
        `take_decided` took them, in order: jobs released (`enqueued` "released"), cancelled
        by a parent, or brought back to waiting by a replay. No `Queue` made those changes."""
        events = [
            Event(
                EventKind(row["kind"]),
                row["queue"],
                row["job_id"],
                row["type"],
                stored_time(row["at"]),
                row["attempt"],
                note=RELEASED if row["kind"] == EventKind.ENQUEUED else None,
                error=row["error"],
            )
            for row in rows
        ]
        if events:
            self.event_hub().deliver(events)

"""The statements of one jobs table: queries.sql and the migrations, rendered for its names."""

from __future__ import annotations

import hashlib
import re

from ..history import with_ended_attempts
from ..sqlfiles import load_queries

FRAGMENTS = ("add_ready_keys", "decide_dependents", "insert_edges")
"""The CTE bodies several statements share, each taken as `{<fragment>:<cte>}` where `<cte>`
names the CTE of the statement's new rows."""
FRAGMENT = re.compile(r"\{(" + "|".join(FRAGMENTS) + r"):(\w+)\}")


MAX_CHANNEL_BYTES = 63
"""NOTIFY channels are identifiers: a longer name is replaced by a digest of it."""


def quote(identifier: str) -> str:
    """Quote an identifier already checked by `check_identifier` (so it holds no quote)."""
    return f'"{identifier}"'


def events_channel(channel: str) -> str:
    """The events channel beside a table's wake-up `channel`, so that the waiters listening
    there (idle workers) are not sent every event."""
    name = f"{channel}_events"
    if len(name.encode()) <= MAX_CHANNEL_BYTES:
        return name
    return f"queuekit_events_{hashlib.sha256(channel.encode()).hexdigest()[:32]}"


class Statements:
    """queries.sql with `{jobs}`, `{paused}`, `{limits}`, `{parents}` and the like filled in for a
    table."""

    def __init__(self, schema: str, table: str) -> None:
        self.jobs = f"{quote(schema)}.{quote(table)}"
        self.migrations = f"{quote(schema)}.{quote(table + '_migrations')}"
        channel = f"{schema}.{table}"
        digest = hashlib.sha256(channel.encode()).hexdigest()[:32]
        self.channel = channel if len(channel) <= MAX_CHANNEL_BYTES else f"queuekit_{digest}"
        """The NOTIFY channel of this table's wake-ups."""
        self._names = {
            "{jobs}": self.jobs,
            "{migrations}": self.migrations,
            "{paused}": f"{quote(schema)}.{quote(table + '_paused')}",
            "{limits}": f"{quote(schema)}.{quote(table + '_limits')}",
            "{limit_keys}": f"{quote(schema)}.{quote(table + '_limit_keys')}",
            "{limit_ready}": f"{quote(schema)}.{quote(table + '_limit_ready')}",
            "{parents}": f"{quote(schema)}.{quote(table + '_parents')}",
            "{counts}": f"{quote(schema)}.{quote(table + '_counts')}",
            "{count_changes}": f"{quote(schema)}.{quote(table + '_count_changes')}",
            # For the triggers, which send wake-ups themselves (the name holds no quote).
            "{notify_channel}": self.channel,
            "{events_channel}": events_channel(self.channel),
            "{schema}": quote(schema),
            "{table}": table,
        }
        self.sql = {name: self.render(body) for name, body in load_queries("postgres").items()}
        # The CTE bodies the statements that add jobs share (see `add_ready_keys`).
        fragments = {name: self.sql.pop(name) for name in FRAGMENTS}
        for name, body in self.sql.items():
            self.sql[name] = FRAGMENT.sub(
                lambda cte: fragments[cte[1]].replace("{rows}", cte[2]), body
            )
        # The new history of an attempt that ends (see `ended_attempt`).
        with_ended_attempts(self.sql)
        # Cancel, replay, run_now and delete of one job, of a batch, and of a job a batch
        # passed over (see queries.sql).
        for action in ("cancel", "replay", "run_now", "delete"):
            for chosen, taking in (("one", 1), ("batch", 5), ("passed", 2)):
                self.sql[f"{action}_{chosen}"] = (
                    self.sql[action]
                    .replace("{chosen}", self.sql[f"chosen_{chosen}"])
                    .replace("{channel}", f"${taking + 1}")
                )

    def render(self, sql: str) -> str:
        """`sql` (a statement or a migration) with this table's names filled in."""
        for token, value in self._names.items():
            sql = sql.replace(token, value)
        return sql

"""Behind PgBouncer: queuekit's session settings move from the startup packet into `SET`s.

PgBouncer refuses a connection whose startup packet sets anything but a handful of parameters
(`application_name` among them), so `jit`, `enable_seqscan` and `plan_cache_mode` cannot be
sent there. In session mode a connection keeps its server session: the pool sets them once
per new connection. In transaction mode consecutive transactions may run on different
server sessions: the statements whose plans they exist for run in a transaction of their own
that sets them with `SET LOCAL` first. See docs/postgres.md, "Running in production".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import asyncpg
import asyncpg.pool

POOL_MODES = ("transaction", "session")
STARTUP_SETTINGS = frozenset({"application_name"})
"""Of queuekit's settings, those a stock PgBouncer accepts in the startup packet."""
TUNED_STATEMENTS = frozenset(
    {
        "claim",
        "next_due",
        "rescue",
        "list_queues",
        "counts",
        "batch_counts",
        "prune_keys",
        "cancel_batch",
        "replay_batch",
        "delete_batch",
    }
)
"""The statements that walk a range of an index (the claim's and due-time's loose index
scans, the rescue's lease range, counting, pruning, bulk batches): the plans the settings
protect. A statement that finds rows by id has one plan with or without them."""


def set_statement(settings: Mapping[str, str], *, local: bool) -> str:
    """`SET [LOCAL] name = 'value'; ...` for the settings PgBouncer refuses at startup."""
    scope = "SET LOCAL" if local else "SET"
    return "; ".join(
        f"{scope} {name} = '{value}'"
        for name, value in settings.items()
        if name not in STARTUP_SETTINGS
    )


async def fetch_with_settings(
    conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record],
    set_local: str,
    sql: str,
    args: Sequence[object],
) -> list[asyncpg.Record]:
    """Run `sql` in a transaction that first applies `set_local`: three more round trips
    (BEGIN, SET, COMMIT), against a plan that stale statistics could make a full scan."""
    async with conn.transaction():
        await conn.execute(set_local)
        return await conn.fetch(sql, *args)

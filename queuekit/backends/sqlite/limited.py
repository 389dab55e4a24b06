"""The claim of queues with `Limits` on SQLite, and their usage: the reads `flow.choose` needs."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Generator, Mapping, Sequence
from typing import Any, TypeVar

import aiosqlite

from ...job import Job
from ...limits import Limits, LimitUsage
from ..flow import (
    QUEUE_KEY,
    Candidate,
    KeyState,
    Usage,
    choose,
    current,
    queue_room,
    report,
    startable,
    window_start,
)
from ..rows import job_from_row
from .queries import SQL

BUSIEST_KEYS = 100
"""How many keys `LimitUsage.running_by_key` names at most."""
KEY_SLACK = 4
"""Keys a limited claim reads at first beyond its room, for held or full ones to be skipped;
if too few of them could start, the next batch, twice as large, is read."""
MAX_KEY_BATCH = 1024
"""The most keys one read takes, so a queue whose first keys are all blocked is read in
bounded steps."""
MAX_COMPOUND_TERMS = 500
"""The most terms one compound SELECT may have in SQLite (SQLITE_MAX_COMPOUND_SELECT)."""


Query = tuple[str, Mapping[str, Any]]
T = TypeVar("T")
Plan = Generator[Query, list[sqlite3.Row], T]
"""The reads and writes of a claim, as a generator: it yields each statement with its
parameters and is sent that statement's rows, so one claim runs on either connection."""


async def _rows(db: aiosqlite.Connection, sql: str, params: Mapping[str, Any]) -> list[sqlite3.Row]:
    return list(await db.execute_fetchall(sql, params))


def _limits(text: str | None) -> Limits | None:
    return None if text is None else Limits.from_json(text)


def claim_statement(queues: Sequence[tuple[str, int]], params: dict[str, Any]) -> str:
    """The plain claim statement over `queues` (each with its count); adds their parameters
    to `params`, which holds the lease, worker_id, lease_token and limit."""
    terms = [SQL["claim_candidates"].replace("{n}", str(n)) for n in range(len(queues))]
    for n, (queue, count) in enumerate(queues):
        params[f"queue_{n}"] = queue
        params[f"limit_{n}"] = count
    return SQL["claim"].replace("{candidates}", _union_all(terms))


def _union_all(terms: list[str]) -> str:
    """`terms` joined by UNION ALL, nested so that no compound SELECT holds more terms than
    SQLite takes (a worker may serve thousands of queues)."""
    while len(terms) > MAX_COMPOUND_TERMS:
        terms = [
            f"SELECT * FROM ({' UNION ALL '.join(terms[start : start + MAX_COMPOUND_TERMS])})"
            for start in range(0, len(terms), MAX_COMPOUND_TERMS)
        ]
    return " UNION ALL ".join(terms)


def claim_limited(
    slots: Sequence[tuple[str, int]], *, limit: int, claim: Mapping[str, Any]
) -> Plan[tuple[list[Job], set[str]]]:
    """Claim from `slots`' queues, at most `limit` jobs in all, inside a write transaction:
    those without limits by the plain claim statement, then those with limits under them;
    `claim` holds the lease, worker_id and lease_token. Returns the jobs and the queues found
    limited."""
    params = {"queues": json.dumps([queue for queue, _ in slots]), "limit": limit}
    rows = {row["queue"]: row for row in (yield SQL["limited_queues"], params)}
    limits = {queue: _limits(row["limits"]) or Limits() for queue, row in rows.items()}
    # The plain statement would skip a limited queue's jobs one by one, reading them all.
    plain = [(queue, count) for queue, count in slots if queue not in limits]
    claimed: list[Job] = []
    if plain:
        plain_params = {**claim, "limit": limit}
        plain_sql = claim_statement(plain, plain_params)
        claimed = in_claim_order((yield plain_sql, plain_params))
    if not limits:
        return claimed, set()
    for queue, count in slots:
        free = min(count, limit - len(claimed))
        if queue in limits and free > 0:
            claimed += yield from _claim_queue(rows[queue], limits[queue], free, claim)
    return claimed, set(limits)


def _claim_queue(
    head: sqlite3.Row,
    limits: Limits,
    free: int,
    claim: Mapping[str, Any],
) -> Plan[list[Job]]:
    """Claim up to `free` jobs of one limited queue, from its row of limited_queues on."""
    queue, now = head["queue"], float(head["now"])
    states: dict[str, KeyState] = {} if head["window"] is None else {QUEUE_KEY: _state(head)}
    heads: dict[str, int] = {}
    running: dict[str, int] = json.loads(head["running"] or "{}")
    # `usage` holds `states` and `heads` themselves: the keys' reads below add to them.
    usage = Usage(
        running=sum(running.values()),
        running_by_key={key: n for key, n in running.items() if key != QUEUE_KEY},
        head_seq=heads,
        states=states,
    )
    # What `choose` would find before it looks at a candidate: with none of it left (paused,
    # held, full, out of starts), it takes nothing and writes nothing, so nothing is read.
    room = queue_room(limits, free, now, usage.running, states.get(QUEUE_KEY))
    if head["paused"] or room <= 0:
        return []
    # The keyless jobs (`choose` takes no more than `room` of them).
    keyless = sorted(json.loads(head["keyless"] or "[]"), key=lambda job: int(job[2]))
    candidates = [Candidate(str(job_id), None, int(seq)) for job_id, seq, _ in keyless]
    if head["keyed"]:
        candidates += yield from _keyed_candidates(queue, limits, room, now, usage, states, heads)
    if not candidates:
        return []
    chosen, written = choose(limits, room, now, candidates, usage)
    jobs: list[Job] = []
    if chosen:
        seqs = json.dumps([c.seq for c in chosen])
        claiming: dict[str, Any] = {**claim, "now": now, "seqs": seqs}
        by_id = {row["id"]: row for row in (yield SQL["limited_claim"], claiming)}
        jobs = [job_from_row(by_id[c.job_id]) for c in chosen if c.job_id in by_id]
    if written:
        # After the claim: keys left with no claimable job are gone from queuekit_limit_ready
        # by then, so moving their turn there (a trigger) costs nothing.
        saved = [[k, s.window, s.started, s.held_until, s.served_at] for k, s in written.items()]
        yield SQL["save_limit_states"], {"queue": queue, "states": json.dumps(saved)}
    return jobs


def _keyed_candidates(
    queue: str,
    limits: Limits,
    room: int,
    now: float,
    usage: Usage,
    states: dict[str, KeyState],
    heads: dict[str, int],
) -> Plan[list[Candidate]]:
    """The keyed candidates `choose` needs, read key by key in turn order (served_at, key) until
    `room` keys can start a job: every key after those ranks below each of their first turns,
    so `choose` would take none of its jobs. The keys' states (and heads, for ordered limits)
    are added to `states` and `heads`, which `usage` holds."""
    window = window_start(limits, now)
    per_key = room if limits.per_key is None else max(min(room, limits.per_key), 0)
    found: list[Candidate] = []
    startable_keys = 0
    after: tuple[float, str] = (-1.0, "")
    batch = room + KEY_SLACK
    offers = SQL["limited_key_head" if limits.ordered else "limited_key_jobs"]
    sql = SQL["limited_ready_keys"].replace("{offers}", offers)
    while startable_keys < room:
        params: dict[str, Any] = {
            "queue": queue,
            "served_at": after[0],
            "key": after[1],
            "batch": batch,
            "now": now,
            "per_key": per_key,
        }
        rows = yield sql, params
        if not rows:
            break
        after = (float(rows[-1]["turn"]), rows[-1]["key"])
        keys = [row["key"] for row in rows]
        states.update((row["key"], _state(row)) for row in rows if row["window"] is not None)
        offering = {row["key"]: _offers(limits, row, heads) for row in rows}
        for key in keys:
            offered = offering[key]
            state = current(states.get(key), window)
            if offered and startable(limits, key, offered, state, now, usage):
                startable_keys += 1
            found += offered
        if len(rows) < batch:
            break
        batch = min(2 * batch, MAX_KEY_BATCH)
    return found


def _offers(limits: Limits, row: sqlite3.Row, heads: dict[str, int]) -> list[Candidate]:
    """The jobs a key offers, from its row of limited_ready_keys; for ordered limits only its
    first unfinished job, if claimable, and that job's seq goes to `heads`."""
    key = row["key"]
    if row["offers"] is None:
        return []
    if limits.ordered:
        job_id, seq, claimable = json.loads(row["offers"])
        heads[key] = int(seq)
        return [Candidate(str(job_id), key, int(seq))] if claimable else []
    jobs = sorted(json.loads(row["offers"]), key=lambda job: int(job[2]))
    return [Candidate(str(job_id), key, int(seq)) for job_id, seq, _ in jobs]


def _candidate(row: sqlite3.Row) -> Candidate:
    return Candidate(row["id"], row["limit_key"], row["seq"])


def in_claim_order(rows: list[sqlite3.Row]) -> list[Job]:
    """Jobs of a claim's rows, which RETURNING gives in no particular order."""
    rows.sort(key=lambda row: (-row["priority"], row["scheduled_at"], row["seq"]))
    return [job_from_row(row) for row in rows]


def slot_freed(before: Sequence[sqlite3.Row], after: Sequence[sqlite3.Row]) -> bool:
    """Whether, between two reads of `limited_waits`, a limited queue's running count fell, a
    job was enqueued to it, or the waited-on queues' limits changed."""
    was = {row["queue"]: row for row in before}
    now = {row["queue"]: row for row in after}
    return was.keys() != now.keys() or any(
        now[queue]["limits"] != row["limits"]
        or now[queue]["running"] < row["running"]
        or (now[queue]["newest"] or 0) > (row["newest"] or 0)
        for queue, row in was.items()
    )


def _state(row: sqlite3.Row) -> KeyState:
    return KeyState(
        window=float(row["window"]),
        started=int(row["started"]),
        held_until=float(row["held_until"]),
        served_at=float(row["served_at"]),
    )


async def usage_of(db: aiosqlite.Connection, queue: str) -> LimitUsage:
    """How much of `queue`'s limits is in use now, by SQLite's clock."""
    rows = await _rows(db, SQL["limits_of"], {"queues": json.dumps([queue])})
    now = float((await _rows(db, SQL["now"], {}))[0][0])
    running_rows = await _rows(db, SQL["limited_running"], {"queue": queue})
    held = await _rows(db, SQL["held_states"], {"queue": queue, "now": now})
    usage = Usage(
        running=sum(row["n"] for row in running_rows),
        running_by_key={row["limit_key"]: row["n"] for row in running_rows if row["limit_key"]},
        states={row["key"]: _state(row) for row in held},
    )
    return report(_limits(rows[0]["limits"]) if rows else None, now, usage, BUSIEST_KEYS)

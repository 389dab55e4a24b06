"""`Claimer`: claiming the best due jobs across queues, in one script where slots allow.

On a single server one script peeks and claims across the queues' slots; on a Cluster a peek
at every queue's heads picks the jobs, then one claim script per queue takes them. A queue
with limits (or a hold) is claimed apart, by claim_limited.lua (limits.py), which those
scripts leave to it; the claimer remembers which queues are limited, to go there at once.
"""

from __future__ import annotations

from collections.abc import Mapping

from ...backend import new_lease_token
from ...job import Job
from .calls import Call, RedisCalls
from .index import JobIndex
from .keys import MEMBER_ID_OFFSET, Keys
from .limits import claim_limited
from .replies import job_from_hash, micros

MAX_CLAIM_ROUNDS = 20
"""Rounds of peeking and claiming one claim call makes at most while other claimers race it."""


class Claimer:
    """The claims of one backend."""

    def __init__(self, calls: RedisCalls, keys: Keys, index: JobIndex) -> None:
        self._calls = calls
        self._keys = keys
        self._index = index
        self._limited: set[str] = set()
        """Queues last seen limited: claimed by claim_limited first, with no peek."""

    async def claim(
        self, slots: Mapping[str, int], *, limit: int, lease: float, worker_id: str
    ) -> list[Job]:
        """Claim the queues known to be limited under their limits, then the others (below);
        a queue found limited on the way is claimed under its limits after them."""
        free = {queue: min(count, limit) for queue, count in slots.items() if count > 0}
        lease_us = str(micros(lease))
        lease_token = new_lease_token()
        attempt = (lease_us, worker_id, lease_token)
        limited = [queue for queue in free if queue in self._limited]
        jobs: list[Job] = []
        if limited and limit > 0:
            jobs, unlimited = await claim_limited(
                self._calls, self._keys, limited, free, limit, attempt
            )
            self._limited -= unlimited
            free = {q: n for q, n in free.items() if q not in self._limited}
        left = limit - len(jobs)
        if not free or left <= 0:
            return self._remembered(jobs)
        found: set[str] = set()
        jobs = (await self._claim_unlimited(free, left, attempt, found)) + jobs
        left = limit - len(jobs)
        if found and left > 0:
            self._limited |= found
            more, unlimited = await claim_limited(
                self._calls, self._keys, list(found), free, left, attempt
            )
            self._limited -= unlimited
            jobs += more
        return self._remembered(jobs)

    def _remembered(self, jobs: list[Job]) -> list[Job]:
        for job in jobs:
            self._index.remember(job)
        return jobs

    async def _claim_unlimited(
        self, free: dict[str, int], left: int, claim: tuple[str, str, str], limited: set[str]
    ) -> list[Job]:
        """Peek at the ready heads of every queue, pick the best `left` across queues, then
        claim them with one script per queue (pipelined); the script skips any job another
        claimer took first and takes the next of the queue's heads instead. Queues found
        limited are added to `limited`, and left alone."""
        lease_us, worker_id, lease_token = claim
        if self._calls.cross_slot:
            jobs = await self._claim_at_once(free, left, lease_us, worker_id, lease_token, limited)
            if jobs is not None:
                return jobs
        free = dict(free)
        claimed: list[tuple[float, str, Job]] = []
        for attempt in range(MAX_CLAIM_ROUNDS):
            if left <= 0 or not free:
                break
            heads = await self._peek(
                {queue: 2 * min(n, left) for queue, n in free.items()}, limited
            )
            free = {queue: n for queue, n in free.items() if queue not in limited}
            scores = {member: score for items in heads.values() for member, score in items}
            picks: dict[str, int] = {}
            picked = 0
            ranked = sorted((score, m, q) for q, items in heads.items() for m, score in items)
            for *_, queue in ranked:
                if picked >= left:
                    break
                if picks.get(queue, 0) < free[queue]:
                    picks[queue] = picks.get(queue, 0) + 1
                    picked += 1
            if not picks:
                break
            calls: list[Call] = []
            for queue, want in picks.items():
                members = [member for member, _ in heads[queue]]
                job_prefix = self._keys.job(queue, "")
                keys = self._keys.bound(queue, "claim") + [
                    job_prefix + member[MEMBER_ID_OFFSET:] for member in members
                ]
                args = [str(want), lease_us, worker_id, lease_token, *members]
                calls.append(("claim", keys, args))
            got = 0
            for queue, result in zip(picks, await self._calls.eval_many(calls), strict=True):
                for member, fields in result:
                    job = job_from_hash(fields)
                    claimed.append((scores[member], member, job))
                    free[queue] -= 1
                    got += 1
            left -= got
            free = {queue: n for queue, n in free.items() if n > 0}
            if got == picked or (claimed and attempt >= 2):
                break  # got what the heads offered, or enough despite other claimers
        claimed.sort(key=lambda entry: entry[:2])
        return [job for _, _, job in claimed]

    async def _claim_at_once(
        self,
        free: Mapping[str, int],
        limit: int,
        lease_us: str,
        worker_id: str,
        lease_token: str,
        limited: set[str],
    ) -> list[Job] | None:
        """Peek and claim in one script (a single server lets it span the queues' slots);
        None when a queue has more due jobs to promote than one call does."""
        queues = list(free)
        keys = [key for queue in queues for key in self._keys.bound(queue, "peek_claim")]
        args = [str(limit), lease_us, worker_id, lease_token, *map(str, free.values())]
        result = await self._calls.eval_cross_slot("peek_claim", keys, args)
        if result[0] == "fallback":
            return None
        limited.update(queues[int(position) - 1] for position in result[1])
        return [job_from_hash(fields) for _, fields in result[2:]]

    async def _peek(
        self, counts: Mapping[str, int], limited: set[str]
    ) -> dict[str, list[tuple[str, float]]]:
        """Promote due jobs and read each queue's ready heads as (member, score); the
        queues found limited go in `limited` (with no heads)."""
        heads: dict[str, list[tuple[str, float]]] = {}
        todo = dict(counts)
        while todo:
            replies = await self._calls.eval_many(
                [("peek", self._keys.bound(queue, "peek"), [str(n)]) for queue, n in todo.items()]
            )
            again: dict[str, int] = {}
            for (queue, n), (more, flat, is_limited) in zip(todo.items(), replies, strict=True):
                heads[queue] = [(flat[i], float(flat[i + 1])) for i in range(0, len(flat), 2)]
                if int(is_limited):
                    limited.add(queue)
                if int(more):
                    again[queue] = n
            todo = again
        return heads

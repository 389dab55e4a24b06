"""The chaos run: jobs through worker processes that are SIGKILLed, and servers restarted.

For each durable backend, enqueue N jobs (priorities, delays, jobs that fail and retry, jobs
that always fail or time out), run three worker processes, SIGKILL a random one every few
seconds and start a new one, and on PostgreSQL and Redis restart the (private) server once.
At the end every job is accounted for: its final state, and every execution beyond those a
fault-free run needs, each explained by a kill or the restart.

`make chaos` runs `python -m tests.chaos.run` (20,000 jobs per backend, then the load run);
`tests/chaos/test_chaos.py` runs a short form. The servers are private: initdb/pg_ctl and
`redis-server --appendonly yes --appendfsync always` on spare loopback ports, never the
shared ones.
"""

from __future__ import annotations

import argparse
import functools
import logging
import random
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import anyio

import queuekit
from queuekit import BackendUnavailableError, JobStatus, OnFailure, Queue

from .plans import Plan, plan_jobs
from .pool import Pool, start_worker
from .servers import store_for

BACKENDS = ("sqlite", "postgres", "redis")
CUT_OFF_SECONDS = 1.0
"""How long before a kill a handler may have ended with its completion not yet written."""


# Executions


@dataclass
class Execution:
    job_id: str
    attempt: int
    pid: int
    started: float
    ended: float | None = None


def read_executions(record: Path) -> dict[str, list[Execution]]:
    by_key: dict[tuple[str, int, int], Execution] = {}
    if record.exists():
        for line in record.read_text().splitlines():
            parts = line.split()
            if len(parts) != 5:
                continue  # a line cut off by a kill
            event, job_id, attempt, pid, at = parts
            key = (job_id, int(attempt), int(pid))
            if event == "start":
                by_key[key] = Execution(job_id, int(attempt), int(pid), float(at))
            elif key in by_key:
                by_key[key].ended = float(at)
    executions: dict[str, list[Execution]] = defaultdict(list)
    for execution in by_key.values():
        executions[execution.job_id].append(execution)
    return executions


# The run


@dataclass
class Figures:
    backend: str
    enqueued: int = 0
    completed: int = 0
    dead_expected: int = 0
    cancelled_expected: int = 0
    """Jobs of workflows cancelled by a parent's planned failure, as their edge says."""
    early: int = 0
    """Jobs that started before one of their parents had finished."""
    missing: int = 0
    wrong_state: int = 0
    executions: int = 0
    duplicates_kill: int = 0
    duplicates_restart: int = 0
    unexplained: int = 0
    kills: int = 0
    restarts: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return self.duplicates_kill + self.duplicates_restart + self.unexplained


async def _stats(queue: Queue) -> queuekit.QueueStats | None:
    try:
        return await queue.stats()
    except BackendUnavailableError:
        return None


async def chaos_run(
    backend: str,
    jobs: int,
    directory: Path,
    *,
    kill_every: float = 3.0,
    lease: float = 2.0,
    concurrency: int = 10,
    restart: bool = True,
    timeout: float = 600.0,
    seed: int | None = None,
) -> Figures:
    """Run the chaos scenario on one backend and return its figures."""
    rng = random.Random(seed)
    figures = Figures(backend)
    started = time.monotonic()
    directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (once, before the run)
    record, log = directory / f"{backend}-executions.log", directory / f"{backend}-workers.log"
    with store_for(backend, directory) as store:
        plans = plan_jobs(jobs, rng)
        async with queuekit.connect(store.url) as queue:
            for start in range(0, len(plans), 500):
                stored = await queue.enqueue_many(p.request for p in plans[start : start + 500])
                figures.enqueued += len(stored)
            pool = Pool(store.url, record, log, lease, concurrency)
            pool.start()
            restart_window: tuple[float, float] | None = None
            try:
                next_kill = time.monotonic() + kill_every * rng.uniform(0.5, 1.5)
                with anyio.fail_after(timeout):
                    while True:
                        await anyio.sleep(0.1)
                        stats = await _stats(queue)
                        if stats is not None and not (
                            stats.waiting or stats.pending or stats.running or stats.failed
                        ):
                            break
                        if time.monotonic() >= next_kill:
                            pool.kill_one(rng)
                            figures.kills += 1
                            next_kill = time.monotonic() + kill_every * rng.uniform(0.5, 1.5)
                        if pool.replace_exited():
                            figures.problems.append(f"a worker exited by itself; see {log}")
                        done = 0 if stats is None else stats.completed + stats.dead
                        if (
                            restart
                            and store.restart is not None
                            and restart_window is None
                            and done >= jobs // 3
                        ):
                            down = time.time()
                            await anyio.to_thread.run_sync(store.restart)
                            restart_window = (down, time.time())
                            figures.restarts += 1
            finally:
                pool.stop()
            figures.seconds = time.monotonic() - started
            await _account(queue, plans, read_executions(record), pool, restart_window, figures)
    return figures


def _last_end(executions: dict[str, list[Execution]], job_id: str) -> float | None:
    """When the last run of a job (the one that finished it) ended, if it ran."""
    runs = executions.get(job_id)
    if not runs:
        return None
    last = max(runs, key=lambda run: run.started)
    return last.ended or last.started


async def _account(
    queue: Queue,
    plans: list[Plan],
    executions: dict[str, list[Execution]],
    pool: Pool,
    restart_window: tuple[float, float] | None,
    figures: Figures,
) -> None:
    stored: dict[str, queuekit.Job] = {}
    for status in JobStatus:
        cursor: str | None = None
        while True:
            page = await queue.list_jobs(status=status, limit=1000, cursor=cursor)
            stored.update((job.id, job) for job in page.jobs)
            cursor = page.next_cursor
            if cursor is None:
                break
    margin = pool.lease + 1.0
    dead_ids = {job_id for job_id, job in stored.items() if job.status == JobStatus.DEAD}
    for plan in plans:
        job = stored.get(plan.request.id)
        if job is None:
            figures.missing += 1
            figures.problems.append(f"missing: {plan.request.id}")
            continue
        if job.status != plan.expected:
            figures.wrong_state += 1
            figures.problems.append(
                f"{job.id} ({job.type}) ended {job.status}, expected {plan.expected}: "
                f"{(job.last_error or '').splitlines()[:1]}"
            )
        elif job.status == JobStatus.COMPLETED:
            figures.completed += 1
        elif job.status == JobStatus.DEAD:
            figures.dead_expected += 1
        else:
            figures.cancelled_expected += 1
        runs = executions.get(job.id, [])
        if runs and plan.request.parents:
            first = min(run.started for run in runs)
            # The parent's last run (the one that finished it) had ended before the job started
            # (an earlier run cut off by a fault may end later, on a stale lease); a job started
            # by a parent's death needs only that one parent to have ended.
            ends = {
                parent.job_id: _last_end(executions, parent.job_id)
                for parent in plan.request.parents
            }
            if plan.request.parents[0].on_failure == OnFailure.TRIGGER:
                deaths = [ends[p.job_id] for p in plan.request.parents if p.job_id in dead_ids]
                early = (
                    [] if any(end is not None and end <= first for end in deaths) else ["a death"]
                )
            else:
                early = [job_id for job_id, end in ends.items() if end is not None and first < end]
            for parent_id in early:
                figures.early += 1
                figures.problems.append(f"{job.id} started before parent {parent_id}")
        figures.executions += len(runs)
        extra = len(runs) - plan.runs
        if extra <= 0:
            continue
        # Cut off by a kill: the handler was running when its process died, or had just ended
        # and its completion may not have been written.
        by_kill = sum(
            1
            for run in runs
            if run.pid in pool.killed
            and (run.ended is None or run.ended >= pool.kill_times[run.pid] - CUT_OFF_SECONDS)
        )
        by_restart = 0
        if restart_window is not None:
            # Running while the server was down: its completion or heartbeats may be lost.
            down, up = restart_window
            by_restart = sum(
                1
                for run in runs
                if run.started <= up + margin and (run.ended is None or run.ended >= down - margin)
            )
        from_kill = min(extra, by_kill)
        from_restart = min(extra - from_kill, by_restart)
        figures.duplicates_kill += from_kill
        figures.duplicates_restart += from_restart
        unexplained = extra - from_kill - from_restart
        if unexplained:
            figures.unexplained += unexplained
            figures.problems.append(
                f"{job.id}: {len(runs)} executions, {plan.runs} needed, unexplained: "
                + ", ".join(f"attempt {r.attempt} pid {r.pid} at {r.started:.3f}" for r in runs)
            )


def table(rows: list[Figures]) -> str:
    header = (
        "backend",
        "enqueued",
        "completed",
        "dead (expected)",
        "cancelled by a parent",
        "started early",
        "missing",
        "wrong state",
        "executions",
        "duplicates: kill / restart / unexplained",
        "kills",
        "restarts",
        "seconds",
    )
    lines = [
        (
            f.backend,
            str(f.enqueued),
            str(f.completed),
            str(f.dead_expected),
            str(f.cancelled_expected),
            str(f.early),
            str(f.missing),
            str(f.wrong_state),
            str(f.executions),
            f"{f.duplicates_kill} / {f.duplicates_restart} / {f.unexplained}",
            str(f.kills),
            str(f.restarts),
            f"{f.seconds:.1f}",
        )
        for f in rows
    ]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    out = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in lines]
    rule = "-+-".join("-" * w for w in widths)
    head = " | ".join(cell.ljust(w) for cell, w in zip(header, widths, strict=True))
    return "\n".join([head, rule, *out])


# The load run


@dataclass
class LoadFigures:
    backend: str
    jobs: int
    producers: int
    seconds: float
    rss_start_kib: list[int]
    rss_end_kib: list[int]


async def load_run(
    backend: str, jobs: int, directory: Path, *, producers: int = 50, concurrency: int = 20
) -> LoadFigures:
    """`jobs` enqueued by `producers` concurrent producers while 3 workers drain them; the
    workers' peak RSS is sampled every second."""
    directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (once, before the run)
    record, log = directory / f"load-{backend}.log", directory / f"load-{backend}-workers.log"
    started = time.monotonic()
    with store_for(backend, directory) as store:
        rss_files = [directory / f"load-{backend}-rss-{n}.txt" for n in range(3)]
        processes = [
            start_worker(store.url, record, log, lease=10.0, concurrency=concurrency, rss=rss)
            for rss in rss_files
        ]
        try:
            async with queuekit.connect(store.url) as queue:

                async def produce(share: int) -> None:
                    for start in range(0, share, 50):
                        batch = min(50, share - start)
                        await queue.enqueue_many(
                            queuekit.new_job("work", {"seconds": 0.0}) for _ in range(batch)
                        )

                async with anyio.create_task_group() as group:
                    for n in range(producers):
                        group.start_soon(produce, jobs // producers + (n < jobs % producers))
                while True:
                    stats = await queue.stats()
                    if stats.completed == jobs:
                        break
                    if any(p.poll() is not None for p in processes):
                        raise RuntimeError(f"a load worker exited; see {log}")
                    await anyio.sleep(0.5)
                await anyio.sleep(1.1)  # one more RSS sample
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                process.wait(timeout=30)
        samples = [
            [int(line.split()[1]) for line in rss.read_text().splitlines()] for rss in rss_files
        ]
        record.unlink(missing_ok=True)
    return LoadFigures(
        backend,
        jobs,
        producers,
        time.monotonic() - started,
        [s[0] for s in samples],
        [s[-1] for s in samples],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--kill-every", type=float, default=3.0)
    parser.add_argument("--lease", type=float, default=3.0)
    parser.add_argument("--load-jobs", type=int, default=100_000, help="0 skips the load run")
    parser.add_argument("--load-backend", default="sqlite")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    # This process's own client logs each failed call while a server restarts: expected here.
    for name in ("queuekit", "asyncpg"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    counts: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="queuekit-chaos-") as tmp:
        rows: list[Figures] = []
        for backend in filter(None, args.backends.split(",")):
            run = functools.partial(
                chaos_run, kill_every=args.kill_every, lease=args.lease, seed=args.seed
            )
            figures = anyio.run(run, backend, args.jobs, Path(tmp) / backend)
            rows.append(figures)
            for problem in figures.problems[:20]:
                print(f"  {backend}: {problem}")
            counts["bad"] += figures.missing + figures.wrong_state + figures.unexplained
            print(table([figures]), flush=True)
        if rows:
            print("\nChaos run\n" + table(rows), flush=True)
        if args.load_jobs:
            load = anyio.run(
                lambda: load_run(args.load_backend, args.load_jobs, Path(tmp) / "load")
            )
            print(
                f"\nLoad run ({load.backend}): {load.jobs} jobs from {load.producers} concurrent "
                f"producers, 3 workers, {load.seconds:.1f} s ({load.jobs / load.seconds:.0f}/s)"
            )
            for n, (first, last) in enumerate(
                zip(load.rss_start_kib, load.rss_end_kib, strict=True)
            ):
                print(
                    f"  worker {n}: peak RSS {first / 1024:.1f} MiB at start, "
                    f"{last / 1024:.1f} MiB at end"
                )
    return 1 if counts["bad"] else 0


if __name__ == "__main__":
    sys.exit(main())

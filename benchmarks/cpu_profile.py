"""Where queuekit's own process spends its CPU per job, by package and by function.

    .bench/queuekit/bin/python -m benchmarks.cpu_profile [--backends memory,postgres,redis]
        [--phase drain|enqueue|bulk] [--shape io] [--jobs 5000] [--concurrency 10] [--top 12]

Each phase runs twice on a fresh store, with `make bench`'s job (`benchmarks.probe`: a probe
line, then the shape) and worker settings: once plain, for the CPU per job
(`time.process_time`), and once under cProfile, for the shares. `drain` fills the queue in
bulk, then times one worker's `run_until_empty`; `enqueue` times one-by-one enqueues, each
awaited before the next; `bulk`, `make bench`'s bulk enqueue (`enqueue_many` of 1,000 at a
time). The shares are of the profiled CPU: the event loop's wait in `epoll` is left out, and
the profiler's overhead, which falls on every call alike, is in it. Below them, what the phase
asked of its store per job (`benchmarks.store_work`) and, for a drain, how the worker's claims
went. Servers as in `benchmarks.limits_cost`.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

import queuekit

from . import probe, store_work
from .drive import enqueue_in_bulk
from .limits_cost import REDIS, discard, fresh_url
from .peers import ROWS_BY_KEY, Servers
from .peers.base import REDIS_ENV
from .peers.queuekit import Queuekit, tasks

IDLE = "<method 'poll' of 'select.epoll' objects>"
"""The event loop waiting for the network: not CPU."""


@dataclass(frozen=True)
class Profile:
    backend: str
    cpu_us_per_job: float
    packages: list[tuple[str, float]]
    """(package, share of the profiled CPU), largest first."""
    functions: list[tuple[str, float]]
    """(function, share of the profiled CPU), largest first."""
    store: store_work.Figures
    """What the phase asked of its store per job (`store_work`), from the run without the
    profiler."""
    claims: store_work.Figures
    """How the worker's claims went (`ClaimTimer`), from the run without the profiler; none
    for an enqueue."""


Phase = Callable[[Queuekit, int, int], Awaitable[Callable[[], Awaitable[None]]]]
"""Prepares a store for `jobs` jobs at `concurrency`; returns what is measured."""


async def drain(peer: Queuekit, jobs: int, concurrency: int) -> Callable[[], Awaitable[None]]:
    await enqueue_in_bulk(peer, range(jobs))

    async def measured() -> None:
        await queuekit.Worker(peer.queue, tasks, concurrency=concurrency).run_until_empty()

    return measured


async def enqueue(peer: Queuekit, jobs: int, concurrency: int) -> Callable[[], Awaitable[None]]:
    async def measured() -> None:
        for n in range(jobs):
            await peer.enqueue(n)

    return measured


async def bulk(peer: Queuekit, jobs: int, concurrency: int) -> Callable[[], Awaitable[None]]:
    async def measured() -> None:
        await enqueue_in_bulk(peer, range(jobs))

    return measured


PHASES: dict[str, Phase] = {"drain": drain, "enqueue": enqueue, "bulk": bulk}


def package_of(function: tuple[str, int, str]) -> str:
    """`queuekit.<module>` for queuekit's own code, else the top package, stdlib module or
    C function (its own name, as cProfile gives it)."""
    filename = function[0]
    if filename == "~":
        return function[2]
    path = Path(filename)
    parts = path.with_suffix("").parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1]
    if "queuekit" in parts:
        inner = parts[len(parts) - parts[::-1].index("queuekit") - 1 :]
        return ".".join(inner[:3] if inner[1:2] == ("backends",) else inner[:2])
    if "benchmarks" in parts:
        return "benchmarks (the job)"
    lib = [i for i, part in enumerate(parts) if part.startswith("python3")]
    return parts[lib[-1] + 1] if lib else filename


def _label(function: tuple[str, int, str]) -> str:
    filename, line, name = function
    if filename == "~":
        return name
    return f"{package_of(function)}:{line}({name})"


def shares(
    profiler: cProfile.Profile, top: int
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Own time per package and per function, as shares of the whole, the idle wait left out."""
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    own: dict[tuple[str, int, str], float] = {
        function: row[2] for function, row in stats.items() if function[2] != IDLE
    }
    total = sum(own.values()) or 1.0
    packages: dict[str, float] = defaultdict(float)
    for function, seconds in own.items():
        packages[package_of(function)] += seconds
    by_package = sorted(((p, s / total) for p, s in packages.items()), key=lambda x: -x[1])
    by_function = sorted(((_label(f), s / total) for f, s in own.items()), key=lambda x: -x[1])
    return by_package[:top], by_function[:top]


class ClaimTimer:
    """Times every claim of a backend (its `claim`, wrapped): a worker makes one at a time, so
    the share of a drain during which one is under way tells whether claims bound it."""

    def __init__(self, backend: queuekit.Backend) -> None:
        self.seconds: list[float] = []
        self.jobs = 0
        claim = backend.claim

        async def timed(*args: Any, **kwargs: Any) -> list[queuekit.Job]:
            began = time.perf_counter()
            try:
                claimed = await claim(*args, **kwargs)
            finally:
                self.seconds.append(time.perf_counter() - began)
            self.jobs += len(claimed)
            return claimed

        backend.claim = timed  # type: ignore[method-assign]

    def figures(self, wall_seconds: float, jobs: int) -> store_work.Figures:
        if not self.seconds:
            return []
        under_way = sum(self.seconds)
        return [
            ("claims per job", len(self.seconds) / jobs),
            ("jobs per claim", self.jobs / len(self.seconds)),
            ("ms per claim", under_way / len(self.seconds) * 1e3),
            ("share of the time a claim is under way", under_way / wall_seconds),
        ]


async def _run(
    backend: str, phase: Phase, jobs: int, concurrency: int, profiler: cProfile.Profile | None
) -> tuple[float, store_work.Figures, store_work.Figures]:
    """CPU seconds of `phase` on a fresh store of `backend`, under `profiler` if given, what
    it asked of the store per job, and how its claims went."""
    with tempfile.TemporaryDirectory() as directory:
        url = fresh_url(backend, directory)
        peer = _peer(backend, url)
        try:
            await peer.open()
            try:
                measured = await phase(peer, jobs, concurrency)
                claims = ClaimTimer(peer.queue.backend)
                async with store_work.measured(url, jobs) as store:
                    wall_began = time.perf_counter()
                    began = time.process_time()
                    if profiler is not None:
                        profiler.enable()
                    try:
                        await measured()
                    finally:
                        if profiler is not None:
                            profiler.disable()
                    cpu = time.process_time() - began
                    wall = time.perf_counter() - wall_began
            finally:
                await peer.close()
            written = await store_work.written(url, jobs)
            return cpu, store + written, claims.figures(wall, jobs)
        finally:
            await discard(url)


def _peer(backend: str, url: str) -> Queuekit:
    """`make bench`'s own queuekit row on the store at `url`: its enqueue and its bulk calls."""
    where = Servers(postgres_dsn=url, redis_url=url, sqlite_path=url.removeprefix("sqlite:///"))
    peer = ROWS_BY_KEY[f"queuekit-{backend}"].load(where)
    assert isinstance(peer, Queuekit)
    return peer


async def profile(backend: str, phase: Phase, jobs: int, concurrency: int, top: int) -> Profile:
    cpu, store, claims = await _run(backend, phase, jobs, concurrency, None)
    profiler = cProfile.Profile()
    await _run(backend, phase, jobs, concurrency, profiler)
    packages, functions = shares(profiler, top)
    return Profile(backend, cpu / jobs * 1e6, packages, functions, store, claims)


def report(result: Profile) -> str:
    lines = [
        f"## {result.backend}: {result.cpu_us_per_job:,.0f} µs of CPU per job",
        "",
        "| package | share |",
        "|---|---:|",
        *(f"| {name} | {share:.0%} |" for name, share in result.packages),
        "",
        "| function (own time) | share |",
        "|---|---:|",
        *(f"| `{name}` | {share:.1%} |" for name, share in result.functions),
    ]
    if result.store:
        lines += [
            "",
            "| of the store, per job | |",
            "|---|---:|",
            *(f"| {name} | {per_job:,.2f} |" for name, per_job in result.store),
        ]
    if result.claims:
        lines += [
            "",
            "| the worker's claims | |",
            "|---|---:|",
            *(f"| {name} | {value:,.2f} |" for name, value in result.claims),
        ]
    return "\n".join(lines)


async def _profile_each(args: argparse.Namespace) -> None:
    """Every backend in one event loop: the probe keeps its PING connections across them."""
    for backend in args.backends.split(","):
        result = await profile(backend, PHASES[args.phase], args.jobs, args.concurrency, args.top)
        print("\n" + report(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="memory,postgres,redis")
    parser.add_argument("--phase", choices=sorted(PHASES), default="drain")
    parser.add_argument("--shape", choices=probe.SHAPES, default="io")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        os.environ[probe.PROBE_FILE_ENV] = f"{directory}/probe"
        os.environ[probe.SHAPE_ENV] = args.shape
        os.environ[REDIS_ENV] = REDIS
        print(
            f"# {args.phase}, {args.shape} jobs, {args.jobs:,} jobs, concurrency {args.concurrency}"
        )
        anyio.run(_profile_each, args)


if __name__ == "__main__":
    main()

"""`queuekit worker --processes N`: N worker processes that share nothing but the backend, one
restarted when it crashes, all drained on SIGTERM, all writing to one log."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import anyio
from anyio.abc import Process

FIRST_RESTART_DELAY = 0.5
"""Seconds before a crashed worker process is started again; doubled for each crash of one
that had not run `STABLE_AFTER` seconds (a broken deploy does not spin), up to
`MAX_RESTART_DELAY`."""
MAX_RESTART_DELAY = 30.0
STABLE_AFTER = 60.0
WORKER_INDEX = "QUEUEKIT_WORKER_INDEX"
"""The environment variable telling a worker process its number (from 1), for its log lines."""


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, where the OS tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass
class Supervisor:
    """Runs `command` (a `queuekit worker ... --processes 1`) `processes` times.

    Each process runs in its own session, so a terminal's Ctrl-C reaches the supervisor alone,
    which passes each SIGTERM or SIGINT on to every process once: the first drains them (each
    finishes or hands back its jobs within its shutdown timeout), a second forces them. A
    process that exits while no signal has come is started again after a delay.
    """

    command: Sequence[str]
    processes: int
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("queuekit.supervisor"))
    _running: dict[int, Process] = field(default_factory=dict, init=False)
    _stopping: anyio.Event = field(default_factory=anyio.Event, init=False)
    _codes: list[int] = field(default_factory=list, init=False)

    async def run(self) -> int:
        """Supervise until a signal stops every process; return 0 if they all drained cleanly,
        else the first non-zero exit status."""
        self.log.info("supervising %d worker processes (pid %d)", self.processes, os.getpid())
        async with anyio.create_task_group() as group:
            group.start_soon(self._pass_signals)
            async with anyio.create_task_group() as workers:
                for index in range(1, self.processes + 1):
                    workers.start_soon(self._keep, index)
            group.cancel_scope.cancel()
        return next((code for code in self._codes if code != 0), 0)

    async def _keep(self, index: int) -> None:
        """Run worker process `index`, starting it again each time it exits unasked."""
        delay = FIRST_RESTART_DELAY
        while not self._stopping.is_set():
            started = anyio.current_time()
            env = {**self.env, WORKER_INDEX: str(index)}
            process = await anyio.open_process(
                list(self.command),
                stdin=None,
                stdout=None,
                stderr=None,
                env=env,
                start_new_session=True,
            )
            self._running[index] = process
            if self._stopping.is_set():  # the signal came while it was starting
                process.send_signal(signal.SIGTERM)
            self.log.info("worker process %d started (pid %d)", index, process.pid)
            code = await process.wait()
            del self._running[index]
            if self._stopping.is_set():
                self._codes.append(code)
                self.log.info("worker process %d (pid %d) exited with %d", index, process.pid, code)
                return
            ran = anyio.current_time() - started
            delay = FIRST_RESTART_DELAY if ran >= STABLE_AFTER else delay
            self.log.warning(
                "worker process %d (pid %d) exited with %d; starting it again in %g s",
                index,
                process.pid,
                code,
                delay,
            )
            with anyio.move_on_after(delay):
                await self._stopping.wait()
            delay = min(delay * 2, MAX_RESTART_DELAY)

    async def _pass_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                name = signal.Signals(signum).name
                first = not self._stopping.is_set()
                self.log.info(
                    "%s: %s %d worker processes",
                    name,
                    "draining" if first else "forcing",
                    len(self._running),
                )
                self._stopping.set()
                for process in list(self._running.values()):
                    process.send_signal(signal.SIGTERM)

"""The chaos run's worker processes: started, SIGKILLed at random and replaced."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start_worker(
    url: str, record: Path, log: Path, *, lease: float, concurrency: int, rss: Path | None = None
) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.chaos.worker",
                url,
                str(record),
                str(lease),
                str(concurrency),
                *([str(rss)] if rss else []),
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=out,
            stderr=out,
        )


@dataclass
class Pool:
    """Worker processes; `kill_one` SIGKILLs a random one and starts a replacement."""

    url: str
    record: Path
    log: Path
    lease: float
    concurrency: int
    size: int = 3
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    killed: set[int] = field(default_factory=set)
    kill_times: dict[int, float] = field(default_factory=dict)
    crashed: int = 0
    """Workers that exited without being killed: a bug, reported as a problem."""

    def start(self) -> None:
        while len(self.processes) < self.size:
            self.processes.append(
                start_worker(
                    self.url, self.record, self.log, lease=self.lease, concurrency=self.concurrency
                )
            )

    def kill_one(self, rng: random.Random) -> None:
        process = self.processes.pop(rng.randrange(len(self.processes)))
        process.send_signal(signal.SIGKILL)
        process.wait()
        self.killed.add(process.pid)
        self.kill_times[process.pid] = time.time()
        self.start()

    def replace_exited(self) -> int:
        """Start a new worker for each one that exited by itself; return how many."""
        exited = [p for p in self.processes if p.poll() is not None]
        for process in exited:
            self.processes.remove(process)
            self.killed.add(process.pid)  # it went down mid-job, as a kill does
            self.kill_times[process.pid] = time.time()
            self.crashed += 1
        self.start()
        return len(exited)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait()
        self.processes.clear()

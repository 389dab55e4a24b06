"""The probe every benchmarked job runs: one line, its number and start time, appended to a file.

Every library's job does exactly this and nothing else, so a run counts which jobs ran and how
often instead of trusting each library's own bookkeeping. `os.write` on an O_APPEND descriptor
is one unbuffered syscall, atomic for lines this short, so several worker processes can share
one file and a killed worker loses nothing it recorded.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass

PROBE_FILE_ENV = "QUEUEKIT_BENCH_PROBE"
_fd: int | None = None


def record(n: int) -> None:
    """Append `n` and the monotonic clock (shared by every process on the machine)."""
    global _fd
    if _fd is None:
        _fd = os.open(os.environ[PROBE_FILE_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_fd, b"%d %d\n" % (n, time.monotonic_ns()))


@dataclass(frozen=True, slots=True)
class Tally:
    """What a probe file says about jobs numbered `0..expected-1`."""

    started_ns: dict[int, int]
    """The first start of each job that ran."""
    duplicates: int
    missing: int

    @property
    def span_seconds(self) -> float:
        """From the first job's start to the last one's."""
        if len(self.started_ns) < 2:
            return 0.0
        return (max(self.started_ns.values()) - min(self.started_ns.values())) / 1e9


def tally(path: str, expected: int) -> Tally:
    """Count runs per job in the probe file at `path`; numbers outside the range are ignored."""
    runs: Counter[int] = Counter()
    started_ns: dict[int, int] = {}
    try:
        with open(path, "rb") as file:
            for line in file:
                n_text, _, t_text = line.partition(b" ")
                n = int(n_text)
                if 0 <= n < expected:
                    runs[n] += 1
                    started_ns.setdefault(n, int(t_text))
    except FileNotFoundError:
        pass
    duplicates = sum(count - 1 for count in runs.values())
    return Tally(started_ns, duplicates, expected - len(started_ns))

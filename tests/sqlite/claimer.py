"""One claiming process for the multi-process SQLite test: claims and completes until empty.

Usage: python -m tests.sqlite.claimer DB_PATH
It prints "ready" once connected, waits for a line on stdin, then prints one claimed job id per
line.
"""

from __future__ import annotations

import sys

import anyio

from queuekit.backends.sqlite import SQLiteBackend


async def main(path: str) -> None:
    backend = SQLiteBackend(path)
    await backend.open()
    try:
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)
        while jobs := await backend.claim({"default": 5}, limit=5, lease=60, worker_id=sys.argv[1]):
            for job in jobs:
                assert await backend.complete(job.attempt)
                print(job.id, flush=True)
    finally:
        await backend.close()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])

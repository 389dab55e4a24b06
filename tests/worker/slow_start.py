"""Run as a script: a process task with a 1 s timeout, whose child process takes 2 s to start
(a spawned child imports the script again as `__mp_main__`, and that import sleeps). It prints
the task's result, or its error."""

from __future__ import annotations

import asyncio
import time

from queuekit.process_pool import ProcessPool

START_SECONDS = 2.0
TIMEOUT_SECONDS = 1.0

if __name__ == "__mp_main__":
    time.sleep(START_SECONDS)


def answer() -> int:
    return 42


async def main() -> None:
    pool = ProcessPool(size=1)
    try:
        print(await pool.run(answer, (), {}, timeout=TIMEOUT_SECONDS))
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}")
    finally:
        pool.close()


if __name__ == "__main__":
    asyncio.run(main())

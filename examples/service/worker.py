"""The worker service: runs the app's jobs until SIGTERM or SIGINT, then drains and exits.

Run: QUEUEKIT_URL=sqlite:///service.db python -m examples.service.worker
"""

from __future__ import annotations

import asyncio
import logging
import os

import queuekit

from .tasks import tasks


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    async with queuekit.connect(os.environ.get("QUEUEKIT_URL", "sqlite:///service.db")) as queue:
        await queuekit.Worker(queue, tasks, queues=["default", "emails"], concurrency=20).run()


if __name__ == "__main__":
    asyncio.run(main())

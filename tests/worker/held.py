"""`Held`: a task whose job runs until the test releases it, to hold a worker's slot."""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio

from queuekit import Tasks


@dataclass
class Held:
    """Tasks with one, `held`, whose job sets `started` and returns once `release` is set."""

    tasks: Tasks = field(default_factory=Tasks)
    started: anyio.Event = field(default_factory=anyio.Event)
    release: anyio.Event = field(default_factory=anyio.Event)

    def __post_init__(self) -> None:
        @self.tasks.task("held")
        async def held() -> str:
            self.started.set()
            await self.release.wait()
            return "finished"

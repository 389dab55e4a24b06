"""Group commit for `complete`, `fail` and `snooze`: calls made together are written together."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..errors import BackendUnavailableError
from ..job import Attempt, JobStatus


@dataclass(eq=False, slots=True)
class Finish:
    """One buffered `complete`, `fail` or `snooze`, waiting for its batch to be written."""

    attempt: Attempt
    kind: str
    result: str | None
    error: str | None
    seconds: float | None
    future: asyncio.Future[str | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    """Resolves to the job's new status, or None if the attempt no longer held the job."""


class FinishBatcher:
    """Group commit for finish calls.

    The first call starts a batch after `window` seconds (0: on the next turn of the event
    loop, which still gathers every call made in the same turn). While a batch is being
    written, new calls wait and join the next one, so batches grow with the load without adding
    latency when idle. One batch at a time, not two: jobs that await I/O end one by one, and a
    second batch in flight took them one or two at a time, a commit each (measured on
    PostgreSQL, jobs of 0.2 ms at concurrency 10: 2.5 jobs per batch against 3.9, and a quarter
    fewer jobs drained per second). A batch holds at most `max_size` calls and at most one call
    per attempt (a repeated call goes to the next batch, where it finds the job already
    finished).
    """

    def __init__(
        self,
        write: Callable[[list[Finish]], Awaitable[None]],
        *,
        window: float,
        max_size: int,
    ) -> None:
        self._write = write
        self._window = window
        self._max_size = max_size
        self._pending: list[Finish] = []
        self._in_flight: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | asyncio.Handle | None = None
        self.batches = 0
        """How many batches have been written: a counter for tests and metrics."""
        self.closed = False

    async def submit(self, op: Finish) -> str | None:
        if self.closed:
            raise BackendUnavailableError("the backend is closed")
        self._pending.append(op)
        if len(self._pending) >= self._max_size:
            self._start_if_free()
        elif self._timer is None and self._in_flight is None:
            loop = asyncio.get_running_loop()
            self._timer = (
                loop.call_later(self._window, self._on_timer)
                if self._window > 0
                else loop.call_soon(self._on_timer)
            )
        return await op.future

    def _on_timer(self) -> None:
        self._timer = None
        self._start_if_free()

    def _start_if_free(self) -> None:
        if self._pending and self._in_flight is None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            batch: list[Finish] = []
            later: list[Finish] = []
            seen: set[Attempt] = set()
            for op in self._pending:
                if len(batch) < self._max_size and op.attempt not in seen:
                    batch.append(op)
                    seen.add(op.attempt)
                else:
                    later.append(op)
            self._pending = later
            self._in_flight = asyncio.create_task(self._run(batch))
            self._in_flight.add_done_callback(self._done)

    async def _run(self, batch: list[Finish]) -> None:
        try:
            await self._write_isolating(batch)
        except asyncio.CancelledError:
            for op in batch:
                op.future.cancel()
            raise
        finally:
            self.batches += 1

    async def _write_isolating(self, batch: list[Finish]) -> None:
        """Write `batch`; if that fails other than for the connection, write each half alone.

        `write` settles every future itself unless it breaks. One call the backend refuses (a
        text it cannot store, say) must not fail the calls written with it: halving finds it in
        a few more round trips, and only its own caller gets the error. A lost connection fails
        every call at once; halving would only wait for it again and again.
        """
        try:
            await self._write(batch)
        except Exception as exc:
            unsettled = [op for op in batch if not op.future.done()]
            if len(unsettled) < 2 or isinstance(exc, BackendUnavailableError | OSError):
                for op in unsettled:
                    op.future.set_exception(exc)
                return
            middle = len(unsettled) // 2
            await self._write_isolating(unsettled[:middle])
            await self._write_isolating(unsettled[middle:])

    def _done(self, _task: asyncio.Task[None]) -> None:
        self._in_flight = None
        # Calls that arrived during the write have waited long enough: go at once.
        self._start_if_free()

    async def close(self) -> None:
        """Write everything buffered, then refuse new calls."""
        self.closed = True
        while self._pending or self._in_flight is not None:
            self._start_if_free()
            if self._in_flight is not None:
                await asyncio.wait({self._in_flight})


class BatchedFinishes:
    """`complete`, `fail` and `snooze` for a backend that writes them through a `FinishBatcher`."""

    _batcher: FinishBatcher

    async def complete(self, attempt: Attempt, result_json: str | None = None) -> JobStatus | None:
        return await self._submit(Finish(attempt, "complete", result_json, None, None))

    async def fail(
        self, attempt: Attempt, error: str, *, retry_in: float | None
    ) -> JobStatus | None:
        return await self._submit(Finish(attempt, "fail", None, error, retry_in))

    async def snooze(self, attempt: Attempt, delay: float) -> JobStatus | None:
        return await self._submit(Finish(attempt, "snooze", None, None, delay))

    async def _submit(self, op: Finish) -> JobStatus | None:
        status = await self._batcher.submit(op)
        return None if status is None else JobStatus(status)

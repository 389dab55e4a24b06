"""`Expiry`: `SQLiteBackend`'s sweep of jobs that expired unstarted, in bounded batches."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

from ...backend import EXPIRE_BATCH, Backend
from ...job import NewJob


def expiry_params(new: NewJob) -> dict[str, float | None]:
    """The insert's expiry parameters: an absolute time, or seconds from the statement's now."""
    return {
        "expires_at": None if new.expires_at is None else new.expires_at.timestamp(),
        "expires_in": new.expires_in,
    }


class Expiry(Backend):
    """`expire` by the `expire` statement (queries.sql), one write per batch."""

    @abc.abstractmethod
    async def _change(self, name: str, params: Mapping[str, Any]) -> int:
        """Run the write statement `name`; how many rows it changed."""

    async def expire(self) -> int:
        expired = 0
        while (changed := await self._change("expire", {"limit": EXPIRE_BATCH})) > 0:
            expired += changed
            if changed < EXPIRE_BATCH:
                break
        return expired

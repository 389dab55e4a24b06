"""The API's worker routes: list the running workers and their schedules, drain a worker (see
`queuekit.registry`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..registry import WorkerInfo, WorkerNotFoundError, drain_worker, list_schedules, list_workers
from . import models

if TYPE_CHECKING:
    from .api import JobsApi


def _worker(info: WorkerInfo) -> dict[str, Any]:
    """The worker as `models.Worker` checks and dumps it."""
    return models.Worker.model_validate(info.to_dict()).model_dump(mode="json")


async def workers(api: JobsApi, request: Request) -> Response:
    found = await list_workers(api.queue.backend)
    return JSONResponse({"workers": [_worker(info) for info in found]})


async def schedules(api: JobsApi, request: Request) -> Response:
    found = await list_schedules(api.queue.backend)
    body = models.Schedules.model_validate({"schedules": [info.to_dict() for info in found]})
    return JSONResponse(body.model_dump(mode="json"))


async def drain(api: JobsApi, request: Request) -> Response:
    worker_id: str = request.path_params["worker_id"]
    await drain_worker(api.queue.backend, worker_id)
    found = [info for info in await list_workers(api.queue.backend) if info.id == worker_id]
    if not found:  # it left between the two calls
        raise WorkerNotFoundError(worker_id)
    return JSONResponse(_worker(found[0]))

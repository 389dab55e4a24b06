"""The API's batch route: a batch's counts by state (`queuekit.batch`, `Job.batch_id`)."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import JobNotFoundError
from ..validation import NAME_PATTERN
from . import models
from .openapi import Endpoint

if TYPE_CHECKING:
    from .api import JobsApi


async def batch_counts(api: JobsApi, request: Request) -> Response:
    batch_id: str = request.path_params["batch_id"]
    missing = JobNotFoundError(f"no batch with id {batch_id!r}")
    if NAME_PATTERN.fullmatch(batch_id) is None:
        raise missing
    counts = await api.queue.batch_counts(batch_id)
    if counts.total == 0:
        raise missing
    return JSONResponse({**asdict(counts), "total": counts.total})


ENDPOINTS = (
    Endpoint(
        "GET",
        "/v1/batches/{batch_id}",
        batch_counts,
        "How many of a batch's jobs are in each state, read at one moment (404 if it has none)",
        response=models.BatchCounts,
        errors=(404,),
    ),
)

"""The API's workflow route: a workflow's jobs with their states, paged (`Job.workflow_id`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import JobNotFoundError
from ..serialize import job_dict
from ..validation import NAME_PATTERN
from . import models
from .guards import validated
from .openapi import Endpoint

if TYPE_CHECKING:
    from .api import JobsApi


async def workflow_jobs(api: JobsApi, request: Request) -> Response:
    workflow_id: str = request.path_params["workflow_id"]
    query = validated(models.WorkflowQuery, dict(request.query_params))
    if NAME_PATTERN.fullmatch(workflow_id) is None:
        raise JobNotFoundError(f"no workflow with id {workflow_id!r}")
    page = await api.queue.list_jobs(
        workflow_id=workflow_id, limit=query.limit, cursor=query.cursor
    )
    if not page.jobs and query.cursor is None:
        raise JobNotFoundError(f"no workflow with id {workflow_id!r}")
    body = {"jobs": [job_dict(job) for job in page.jobs], "next_cursor": page.next_cursor}
    return JSONResponse(body)


ENDPOINTS = (
    Endpoint(
        "GET",
        "/v1/workflows/{workflow_id}",
        workflow_jobs,
        "A workflow's jobs with their states, newest first (404 if it has none)",
        query=models.WorkflowQuery,
        response=models.JobPage,
        errors=(404, 422),
    ),
)

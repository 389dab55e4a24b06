"""The HTTP API under /v1: JSON in and out; `ENDPOINTS` is both its routes and its document.

Errors are `{"error": "..."}`: 400 malformed JSON, 404 unknown job or worker, 409 wrong state,
413 body too large, 415 a body that is not `application/json`, 422 invalid input, 503 backend
down.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from functools import cache
from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import (
    BackendUnavailableError,
    JobExistsError,
    JobNotFoundError,
    JobRunningError,
    ValidationError,
)
from ..job import JobStatus, NewJob
from ..limits import Limits
from ..options import new_job
from ..queue import REPLAYABLE, RUNNABLE, Queue
from ..registry import WorkerNotFoundError
from ..serialize import activity_dict, job_dict, stats_dict, usage_dict
from ..validation import NAME_PATTERN, check_name
from . import batch_routes, enqueue_models, live, models, workflow_routes
from .guards import json_error, read_body, validated
from .openapi import Endpoint, document
from .workers import drain, schedules, workers

DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
"""Request bodies above this are refused with 413 (a payload itself is capped at 1 MiB)."""

Model = TypeVar("Model", bound=BaseModel)


class JobsApi:
    """What the endpoints share: the queue, and the body size limit."""

    def __init__(self, queue: Queue, max_body_bytes: int) -> None:
        self.queue = queue
        self.max_body_bytes = max_body_bytes

    async def body(self, request: Request, model: type[Model]) -> Model:
        """The JSON body as `model`; only `application/json` is read (no simple CORS request)."""
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != "application/json":
            raise HTTPException(415, "send the body as Content-Type: application/json")
        raw = await read_body(request, self.max_body_bytes)
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
            raise HTTPException(400, f"body is not valid JSON: {reason}") from None
        return validated(model, data)


def _job_id(request: Request) -> str:
    value: str = request.path_params["job_id"]
    if NAME_PATTERN.fullmatch(value) is None:
        raise JobNotFoundError(f"no job with id {value!r}")
    return value


def _options(job: BaseModel) -> dict[str, Any]:
    return {key: getattr(job, key) for key in job.model_fields_set - {"type", "payload"}}


# Jobs


def _new_job(api: JobsApi, job: Any) -> NewJob:
    return new_job(
        job.type, job.payload, max_payload_bytes=api.queue.max_payload_bytes, **_options(job)
    )


async def enqueue(api: JobsApi, request: Request) -> Response:
    job = _new_job(api, await api.body(request, enqueue_models.NewJob))
    (stored,) = await api.queue.enqueue_many([job])
    return JSONResponse(job_dict(stored), status_code=201)


async def enqueue_bulk(api: JobsApi, request: Request) -> Response:
    body: Any = await api.body(request, enqueue_models.NewJobs)
    requests = [_new_job(api, job) for job in body.jobs]
    if len({r.id for r in requests}) < len(requests):
        raise HTTPException(409, "two jobs have the same id")
    jobs = await api.queue.enqueue_many(requests)
    return JSONResponse({"jobs": [job_dict(job) for job in jobs]}, status_code=201)


async def list_jobs(api: JobsApi, request: Request) -> Response:
    query = validated(models.JobQuery, dict(request.query_params))
    page = await api.queue.list_jobs(
        queue=query.queue,
        status=query.status,
        type=query.type,
        limit=query.limit,
        cursor=query.cursor,
        error=query.error,
        created_after=query.created_after,
        created_before=query.created_before,
        workflow_id=query.workflow_id,
        batch_id=query.batch_id,
    )
    return JSONResponse(
        {"jobs": [job_dict(job) for job in page.jobs], "next_cursor": page.next_cursor}
    )


async def get_job(api: JobsApi, request: Request) -> Response:
    return JSONResponse(job_dict(await api.queue.get_job(_job_id(request))))


async def replay(api: JobsApi, request: Request) -> Response:
    target = _job_id(request)
    status = (await api.queue.get_job(target)).status
    if status in REPLAYABLE:
        job = await api.queue.replay(target)
        status = job.status
        if status == JobStatus.PENDING:
            return JSONResponse(job_dict(job))
    raise HTTPException(409, f"the job is {status}: only dead or cancelled jobs are replayed")


async def cancel(api: JobsApi, request: Request) -> Response:
    return JSONResponse(job_dict(await api.queue.cancel(_job_id(request))))


async def run_now(api: JobsApi, request: Request) -> Response:
    job = await api.queue.run_now(_job_id(request))
    if job.status not in RUNNABLE:
        message = f"the job is {job.status}: only a job scheduled later or retrying is run now"
        raise HTTPException(409, message)
    return JSONResponse(job_dict(job))


async def delete(api: JobsApi, request: Request) -> Response:
    target = _job_id(request)
    if not await api.queue.delete_job(target):
        raise JobNotFoundError(f"no job with id {target!r}")
    return Response(status_code=204)


async def _matching(
    api: JobsApi, request: Request, model: type[BaseModel], run: Callable[..., Awaitable[int]]
) -> Response:
    where: Any = await api.body(request, model)
    return JSONResponse(
        {"count": await run(queue=where.queue, type=where.type, status=where.status)}
    )


async def replay_matching(api: JobsApi, request: Request) -> Response:
    return await _matching(api, request, models.ReplayFilter, api.queue.replay_all)


async def cancel_matching(api: JobsApi, request: Request) -> Response:
    return await _matching(api, request, models.CancelFilter, api.queue.cancel_all)


async def delete_matching(api: JobsApi, request: Request) -> Response:
    return await _matching(api, request, models.DeleteFilter, api.queue.delete_all)


async def run_now_matching(api: JobsApi, request: Request) -> Response:
    return await _matching(api, request, models.RunNowFilter, api.queue.run_now_all)


# Queues


async def list_queues(api: JobsApi, request: Request) -> Response:
    names = await api.queue.list_queues()
    return JSONResponse({"queues": [stats_dict(await api.queue.stats(name)) for name in names]})


async def queue_stats(api: JobsApi, request: Request) -> Response:
    name = check_name(request.path_params["name"])
    return JSONResponse(stats_dict(await api.queue.stats(name)))


async def queue_activity(api: JobsApi, request: Request) -> Response:
    name = check_name(request.path_params["name"])
    query = validated(models.ActivityQuery, dict(request.query_params))
    return JSONResponse(activity_dict(name, await api.queue.activity(name, minutes=query.minutes)))


async def pause(api: JobsApi, request: Request) -> Response:
    name = check_name(request.path_params["name"])
    await api.queue.pause(name)
    return JSONResponse(stats_dict(await api.queue.stats(name)))


async def resume(api: JobsApi, request: Request) -> Response:
    name = check_name(request.path_params["name"])
    await api.queue.resume(name)
    return JSONResponse(stats_dict(await api.queue.stats(name)))


# Limits


async def queue_limits(api: JobsApi, name: str) -> Response:
    """The queue's limits and usage, times in ISO 8601 as in a job (as `queuekit limits`)."""
    return JSONResponse(usage_dict(name, await api.queue.limit_usage(name)))


async def all_limits(api: JobsApi, request: Request) -> Response:
    every = await api.queue.limits()
    return JSONResponse({"limits": {name: asdict(limits) for name, limits in every.items()}})


async def get_limits(api: JobsApi, request: Request) -> Response:
    return await queue_limits(api, check_name(request.path_params["name"]))


async def set_limits(api: JobsApi, request: Request) -> Response:
    name = check_name(request.path_params["name"])
    limits = Limits(**(await api.body(request, models.NewLimits)).model_dump())
    if limits.is_unlimited:
        raise HTTPException(422, "body: give at least one limit (DELETE removes the limits)")
    await api.queue.set_limits(name, limits)
    return await queue_limits(api, name)


async def clear_limits(api: JobsApi, request: Request) -> Response:
    name = check_name(request.path_params["name"])
    await api.queue.set_limits(name, None)
    return await queue_limits(api, name)


async def hold(api: JobsApi, request: Request) -> Response:
    name = check_name(request.path_params["name"])
    wanted = await api.body(request, models.Hold)
    await api.queue.hold(name, wanted.seconds, key=wanted.key)
    return await queue_limits(api, name)


async def openapi(api: JobsApi, request: Request) -> Response:
    return JSONResponse(openapi_document())


ENDPOINTS = (
    Endpoint(
        "POST",
        "/v1/jobs",
        enqueue,
        "Enqueue a job",
        body=enqueue_models.NewJob,
        response=models.Job,
        status=201,
        errors=(409,),
    ),
    Endpoint(
        "GET",
        "/v1/jobs",
        list_jobs,
        "List jobs newest first, by queue, status, type, error text, creation time, workflow "
        "and batch",
        query=models.JobQuery,
        response=models.JobPage,
        errors=(422,),
    ),
    Endpoint(
        "POST",
        "/v1/jobs/bulk",
        enqueue_bulk,
        "Enqueue many jobs in one round trip",
        body=enqueue_models.NewJobs,
        response=models.Jobs,
        status=201,
        errors=(409,),
    ),
    Endpoint(
        "POST",
        "/v1/jobs/replay",
        replay_matching,
        "Replay every dead or cancelled job that matches",
        body=models.ReplayFilter,
        response=models.Count,
    ),
    Endpoint(
        "POST",
        "/v1/jobs/cancel",
        cancel_matching,
        "Cancel every unfinished job that matches",
        body=models.CancelFilter,
        response=models.Count,
    ),
    Endpoint(
        "POST",
        "/v1/jobs/run-now",
        run_now_matching,
        "Make every matching job scheduled later (or failed and waiting for its retry) due now",
        body=models.RunNowFilter,
        response=models.Count,
    ),
    Endpoint(
        "POST",
        "/v1/jobs/delete",
        delete_matching,
        "Delete every job that matches, but running ones",
        body=models.DeleteFilter,
        response=models.Count,
    ),
    Endpoint(
        "GET",
        "/v1/jobs/{job_id}",
        get_job,
        "One job",
        response=models.Job,
        errors=(404,),
    ),
    Endpoint(
        "DELETE",
        "/v1/jobs/{job_id}",
        delete,
        "Delete a job that is not running",
        status=204,
        errors=(404, 409),
    ),
    Endpoint(
        "POST",
        "/v1/jobs/{job_id}/replay",
        replay,
        "Run a dead or cancelled job again (same id, attempts reset)",
        response=models.Job,
        errors=(404, 409),
    ),
    Endpoint(
        "POST",
        "/v1/jobs/{job_id}/run-now",
        run_now,
        "Make a job scheduled later (or failed and waiting for its retry) due now, its "
        "attempts kept; a job due already stays as it is",
        response=models.Job,
        errors=(404, 409),
    ),
    Endpoint(
        "POST",
        "/v1/jobs/{job_id}/cancel",
        cancel,
        "Cancel a job that has not finished",
        response=models.Job,
        errors=(404,),
    ),
    Endpoint(
        "GET",
        "/v1/queues",
        list_queues,
        "Every queue with its stats",
        response=models.Queues,
    ),
    Endpoint(
        "GET",
        "/v1/queues/{name}",
        queue_stats,
        "One queue's stats",
        response=models.QueueStats,
        errors=(422,),
    ),
    Endpoint(
        "GET",
        "/v1/queues/{name}/activity",
        queue_activity,
        "The queue's activity by minute: jobs enqueued, finished, wait and run times",
        query=models.ActivityQuery,
        response=models.Activity,
        errors=(422,),
    ),
    Endpoint(
        "POST",
        "/v1/queues/{name}/pause",
        pause,
        "Stop workers claiming from the queue",
        response=models.QueueStats,
        errors=(422,),
    ),
    Endpoint(
        "POST",
        "/v1/queues/{name}/resume",
        resume,
        "Let workers claim from the queue again",
        response=models.QueueStats,
        errors=(422,),
    ),
    Endpoint(
        "GET",
        "/v1/limits",
        all_limits,
        "Every queue's limits",
        response=models.AllLimits,
    ),
    Endpoint(
        "GET",
        "/v1/queues/{name}/limits",
        get_limits,
        "A queue's limits and how much of them is in use",
        response=models.QueueLimits,
        errors=(422,),
    ),
    Endpoint(
        "PUT",
        "/v1/queues/{name}/limits",
        set_limits,
        "Replace the queue's limits; every worker applies them from its next claim",
        body=models.NewLimits,
        response=models.QueueLimits,
    ),
    Endpoint(
        "DELETE",
        "/v1/queues/{name}/limits",
        clear_limits,
        "Remove the queue's limits",
        response=models.QueueLimits,
        errors=(422,),
    ),
    Endpoint(
        "POST",
        "/v1/queues/{name}/hold",
        hold,
        "Start no job of the queue, or of one limit_key, for some seconds",
        body=models.Hold,
        response=models.QueueLimits,
    ),
    Endpoint(
        "GET",
        "/v1/workers",
        workers,
        "The running workers: what each serves and runs, and when it was last seen",
        response=models.Workers,
    ),
    Endpoint(
        "POST",
        "/v1/workers/{worker_id}/drain",
        drain,
        "Ask a worker to stop claiming, finish its running jobs and exit (it learns at its "
        "next beat, within a few seconds)",
        response=models.Worker,
        errors=(404,),
    ),
    Endpoint(
        "GET",
        "/v1/schedules",
        schedules,
        "The schedules the running workers fire: next run, last fire, skipped slots",
        response=models.Schedules,
    ),
    *workflow_routes.ENDPOINTS,
    *batch_routes.ENDPOINTS,
    Endpoint("GET", "/v1/openapi.json", openapi, "This document"),
)


@cache
def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI 3.1 document."""
    return document(ENDPOINTS)


def routes(api: JobsApi) -> list[Route]:
    """One route per path, so a 405 lists every method the path has in `Allow`."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for endpoint in ENDPOINTS:  # in order: /v1/jobs/bulk is matched before /v1/jobs/{job_id}
        by_path.setdefault(endpoint.path, {})[endpoint.method] = endpoint

    def route(path: str, handlers: dict[str, Endpoint]) -> Route:
        async def dispatch(request: Request) -> Response:
            method = "GET" if request.method == "HEAD" else request.method
            try:
                return await handlers[method].handler(api, request)
            except (JobNotFoundError, WorkerNotFoundError) as exc:
                return json_error(404, str(exc))
            except (JobExistsError, JobRunningError) as exc:
                return json_error(409, str(exc))
            except ValidationError as exc:
                return json_error(422, str(exc))
            except BackendUnavailableError as exc:
                return json_error(503, f"backend unavailable: {exc}")

        return Route(path, dispatch, methods=list(handlers))

    return [*(route(path, each) for path, each in by_path.items()), live.api_route(api.queue)]

"""The HTTP API: a small ASGI app over a `Queue`, to mount in your app or run with `queuekit serve`.

    app = create_app(queue, api_key="...")        # Starlette app; routes under /v1

Every response is JSON; errors are `{"error": "..."}` with a 4xx status (503 when the backend
is down). With an `api_key`, every route but `/v1/openapi.json` needs
`Authorization: Bearer <key>`, compared in constant time. The app opens the queue on startup
and closes it on shutdown (its lifespan); when mounted, run that lifespan or open the queue
yourself.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .dashboard import Authenticate, Dashboard
from .errors import BackendUnavailableError, JobNotFoundError, ValidationError
from .job import JobStatus
from .queue import MAX_PAGE_SIZE, Queue
from .serialize import job_dict, stats_dict
from .validation import MAX_DELAY_SECONDS, NAME_PATTERN, check_name, new_job

DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
"""Request bodies above this are refused with 413 (a payload itself is capped at 1 MiB)."""
MAX_BULK_JOBS = 1000
DEFAULT_PAGE_SIZE = 50
"""Delays beyond a century are refused: the stored time would not fit a datetime."""
ENQUEUE_FIELDS = {"type", "payload", "queue", "priority", "delay", "unique_key", "max_attempts"}

if TYPE_CHECKING:
    from .metrics import Metrics

Handler = Callable[[Request], Awaitable[Response]]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class _Auth:
    """Bearer-key check in front of the routes, compared in constant time."""

    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self.expected = None if api_key is None else f"Bearer {api_key}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        route_path = path[len(root) :] if root and path.startswith(root) else path
        if (
            scope["type"] == "http"
            and self.expected is not None
            and not route_path.endswith("/v1/openapi.json")
            # The dashboard checks its own way (key, login cookie or `authenticate`).
            and not (route_path == "/" or route_path.startswith("/dashboard"))
        ):
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                response = _error(
                    401, "missing or wrong API key", {"WWW-Authenticate": 'Bearer realm="queuekit"'}
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(
    queue: Queue,
    *,
    api_key: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    dashboard: bool = True,
    authenticate: Authenticate | None = None,
    secret: bytes | None = None,
    metrics: Metrics | None = None,
) -> Starlette:
    """An ASGI app serving the API for `queue`, and the web dashboard at `/dashboard/`.

    The dashboard (`dashboard=False` leaves it out) takes the same `api_key` (as a bearer
    header, or typed once into its login page) or admits requests your own
    `authenticate(request) -> bool` accepts; `secret` signs its CSRF tokens and login cookie
    (random per app by default: pass one when several processes serve it). With `metrics` (a
    `queuekit.metrics.Metrics`), `GET /metrics` serves Prometheus text, guarded by the key.

    `api_key=None` leaves it open (fine on loopback; `queuekit serve` refuses to listen
    elsewhere without a key). An empty string is refused rather than taken as "no key".
    """
    if api_key is not None and not api_key:
        raise ValueError("api_key is empty: pass a key, or None for no authentication")

    async def read_json(request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdecimal() and int(declared) > max_body_bytes:
            raise ApiError(413, f"request body over {max_body_bytes} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body_bytes:
                raise ApiError(413, f"request body over {max_body_bytes} bytes")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise ApiError(400, f"body is not valid JSON: {exc}") from None

    def request_job(body: Any) -> Any:
        if not isinstance(body, dict):
            raise ApiError(422, "a job is a JSON object with at least a type")
        unknown = sorted(set(body) - ENQUEUE_FIELDS)
        if unknown:
            raise ApiError(422, f"unknown fields: {', '.join(unknown)}")
        if "type" not in body:
            raise ApiError(422, "type is required")
        options = {key: value for key, value in body.items() if key != "type"}
        for name in ("priority", "max_attempts"):
            value = options.get(name)
            if isinstance(value, bool):
                raise ApiError(422, f"{name} must be an integer")
            if isinstance(value, float) and value.is_integer():
                options[name] = int(value)  # JSON Schema counts 20.0 as an integer
        if "unique_key" in options and not isinstance(options["unique_key"], str | None):
            raise ApiError(422, "unique_key must be a string or null")
        if "delay" in options and (
            isinstance(options["delay"], bool)
            or not isinstance(options["delay"], int | float | None)
        ):
            raise ApiError(422, "delay must be a number of seconds")
        return new_job(body["type"], max_payload_bytes=queue.max_payload_bytes, **options)

    def job_id(request: Request) -> str:
        value: str = request.path_params["job_id"]
        if NAME_PATTERN.fullmatch(value) is None:
            raise JobNotFoundError(f"no job with id {value!r}")
        return value

    async def enqueue(request: Request) -> Response:
        job = await queue.enqueue_many([request_job(await read_json(request))])
        return JSONResponse(job_dict(job[0]), status_code=201)

    async def enqueue_bulk(request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("jobs"), list):
            raise ApiError(422, 'the body is {"jobs": [job, ...]}')
        if set(body) != {"jobs"}:
            raise ApiError(422, 'the body is {"jobs": [job, ...]} and nothing else')
        if not 1 <= len(body["jobs"]) <= MAX_BULK_JOBS:
            raise ApiError(422, f"send 1 to {MAX_BULK_JOBS} jobs at a time")
        requests = [request_job(item) for item in body["jobs"]]
        if len({r.id for r in requests}) < len(requests):
            raise ApiError(422, "two jobs have the same id")
        jobs = await queue.enqueue_many(requests)
        return JSONResponse({"jobs": [job_dict(job) for job in jobs]}, status_code=201)

    async def list_jobs(request: Request) -> Response:
        params = request.query_params
        unknown = sorted(set(params) - {"queue", "status", "limit", "cursor"})
        if unknown:
            raise ApiError(422, f"unknown parameters: {', '.join(unknown)}")
        raw_limit = params.get("limit", str(DEFAULT_PAGE_SIZE))
        if not raw_limit.isdecimal() or not 1 <= int(raw_limit) <= MAX_PAGE_SIZE:
            raise ApiError(422, f"limit must be an integer from 1 to {MAX_PAGE_SIZE}")
        page = await queue.list_jobs(
            queue=params.get("queue"),
            status=params.get("status"),
            limit=int(raw_limit),
            cursor=params.get("cursor"),
        )
        return JSONResponse(
            {"jobs": [job_dict(job) for job in page.jobs], "next_cursor": page.next_cursor}
        )

    async def get_job(request: Request) -> Response:
        return JSONResponse(job_dict(await queue.get_job(job_id(request))))

    async def replay(request: Request) -> Response:
        job = await queue.replay(job_id(request))
        if job.status != JobStatus.PENDING:
            raise ApiError(409, f"job is {job.status}: only dead or cancelled jobs are replayed")
        return JSONResponse(job_dict(job))

    async def cancel(request: Request) -> Response:
        return JSONResponse(job_dict(await queue.cancel(job_id(request))))

    async def delete(request: Request) -> Response:
        target = job_id(request)
        if not await queue.delete_job(target):
            await queue.get_job(target)  # 404 when unknown
            raise ApiError(409, "the job is running: cancel it first")
        return Response(status_code=204)

    async def list_queues(request: Request) -> Response:
        names = await queue.list_queues()
        return JSONResponse({"queues": [stats_dict(await queue.stats(name)) for name in names]})

    async def queue_stats(request: Request) -> Response:
        name = check_name(request.path_params["name"])
        return JSONResponse(stats_dict(await queue.stats(name)))

    async def pause(request: Request) -> Response:
        name = check_name(request.path_params["name"])
        await queue.pause(name)
        return JSONResponse(stats_dict(await queue.stats(name)))

    async def resume(request: Request) -> Response:
        name = check_name(request.path_params["name"])
        await queue.resume(name)
        return JSONResponse(stats_dict(await queue.stats(name)))

    async def openapi(request: Request) -> Response:
        return JSONResponse(OPENAPI)

    def guarded(handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return _error(exc.status, exc.message)
            except JobNotFoundError as exc:
                return _error(404, str(exc))
            except ValidationError as exc:
                return _error(422, str(exc))
            except BackendUnavailableError as exc:
                return _error(503, f"backend unavailable: {exc}")

        return run

    def methods(path: str, **handlers: Handler) -> Route:
        """One route per path, so a 405 lists every method the path has in `Allow`."""
        table = {method.upper(): guarded(handler) for method, handler in handlers.items()}

        async def dispatch(request: Request) -> Response:
            return await table[request.method if request.method != "HEAD" else "GET"](request)

        return Route(path, dispatch, methods=list(table))

    routes = [
        Route("/v1/openapi.json", openapi, methods=["GET"]),
        methods("/v1/jobs", get=list_jobs, post=enqueue),
        methods("/v1/jobs/bulk", post=enqueue_bulk),
        methods("/v1/jobs/{job_id}", get=get_job, delete=delete),
        methods("/v1/jobs/{job_id}/replay", post=replay),
        methods("/v1/jobs/{job_id}/cancel", post=cancel),
        methods("/v1/queues", get=list_queues),
        methods("/v1/queues/{name}", get=queue_stats),
        methods("/v1/queues/{name}/pause", post=pause),
        methods("/v1/queues/{name}/resume", post=resume),
    ]

    if dashboard:
        board = Dashboard(queue, api_key=api_key, authenticate=authenticate, secret=secret)
        routes += board.routes()

        async def home(request: Request) -> Response:
            return RedirectResponse(board.base(request) + "/", status_code=307)

        routes.append(Route("/", home, methods=["GET"]))
    if metrics is not None:
        scraper = metrics

        async def serve_metrics(request: Request) -> Response:
            body, content_type = await scraper.scrape(queue)
            return Response(body, media_type=content_type)

        routes.append(Route("/metrics", guarded(serve_metrics), methods=["GET"]))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, exc.detail, dict(exc.headers or {}))

    async def server_error(request: Request, exc: Exception) -> Response:
        return _error(500, "internal error")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with queue:
            yield

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.add_middleware(_Auth, api_key=api_key)
    return app


# The OpenAPI document: written out, checked against the app by schemathesis (tests/api/).

_STATUSES = [status.value for status in JobStatus]
_NAME = {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,128}$"}
_TIME = {"type": ["string", "null"], "format": "date-time"}
_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Malformed JSON",
        401: "Missing or wrong API key",
        404: "No such job",
        409: "Conflict with the job's state",
        413: "Body too large",
        422: "Invalid input",
        503: "Backend unavailable",
    }
    return {str(code): _json(_ERROR, text[code]) for code in (*codes, 401, 503)}


_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
_QUEUE_NAME = {"name": "name", "in": "path", "required": True, "schema": _NAME}
_JOB = {"$ref": "#/components/schemas/Job"}
_STATS = {"$ref": "#/components/schemas/QueueStats"}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "queuekit", "version": "1"},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}},
            },
            "NewJob": {
                "type": "object",
                "required": ["type"],
                "additionalProperties": False,
                "properties": {
                    "type": _NAME,
                    "payload": {},
                    "queue": _NAME,
                    "priority": {"type": "integer", "minimum": 0, "maximum": 1000},
                    "delay": {
                        "type": ["number", "null"],
                        "minimum": 0,
                        "maximum": MAX_DELAY_SECONDS,
                    },
                    "unique_key": {"type": ["string", "null"], "minLength": 1, "maxLength": 512},
                    "max_attempts": {"type": "integer", "minimum": 1, "maximum": 1000},
                },
            },
            "Job": {
                "type": "object",
                "required": ["id", "queue", "type", "status", "attempts", "max_attempts"],
                "properties": {
                    "id": {"type": "string"},
                    "queue": {"type": "string"},
                    "type": {"type": "string"},
                    "status": {"type": "string", "enum": _STATUSES},
                    "payload": {},
                    "priority": {"type": "integer"},
                    "attempts": {"type": "integer"},
                    "max_attempts": {"type": "integer"},
                    "created_at": _TIME,
                    "scheduled_at": _TIME,
                    "started_at": _TIME,
                    "finished_at": _TIME,
                    "lease_expires_at": _TIME,
                    "worker_id": {"type": ["string", "null"]},
                    "last_error": {"type": ["string", "null"]},
                    "unique_key": {"type": ["string", "null"]},
                    "result": {},
                    "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
            "QueueStats": {
                "type": "object",
                "required": ["queue", "paused", "health"],
                "properties": {
                    "queue": {"type": "string"},
                    "paused": {"type": "boolean"},
                    **{
                        name: {"type": "integer"}
                        for name in (
                            "pending",
                            "scheduled",
                            "ready",
                            "running",
                            "completed",
                            "failed",
                            "dead",
                            "cancelled",
                            "total",
                        )
                    },
                    "oldest_ready_age": {"type": ["number", "null"]},
                    "success_rate": {"type": ["number", "null"]},
                    "health": {"type": "integer", "minimum": 0, "maximum": 100},
                },
            },
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/jobs": {
            "post": {
                "summary": "Enqueue a job",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/NewJob"}}
                    },
                },
                "responses": {"201": _json(_JOB, "The stored job"), **_errors(400, 413, 422)},
            },
            "get": {
                "summary": "List jobs newest first",
                "parameters": [
                    {"name": "queue", "in": "query", "schema": _NAME},
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"type": "string", "enum": _STATUSES},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "description": "The next_cursor of the previous page",
                        "schema": {"type": "string", "pattern": "^[0-9]+$"},
                    },
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["jobs", "next_cursor"],
                            "properties": {
                                "jobs": {"type": "array", "items": _JOB},
                                "next_cursor": {"type": ["string", "null"]},
                            },
                        },
                        "A page of jobs",
                    ),
                    **_errors(422),
                },
            },
        },
        "/v1/jobs/bulk": {
            "post": {
                "summary": "Enqueue many jobs in one round trip",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["jobs"],
                                "additionalProperties": False,
                                "properties": {
                                    "jobs": {
                                        "type": "array",
                                        "minItems": 1,
                                        "maxItems": MAX_BULK_JOBS,
                                        "items": {"$ref": "#/components/schemas/NewJob"},
                                    }
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": _json(
                        {
                            "type": "object",
                            "required": ["jobs"],
                            "properties": {"jobs": {"type": "array", "items": _JOB}},
                        },
                        "The stored jobs, in order",
                    ),
                    **_errors(400, 413, 422),
                },
            }
        },
        "/v1/jobs/{job_id}": {
            "parameters": [_JOB_ID],
            "get": {
                "summary": "One job",
                "responses": {"200": _json(_JOB, "The job"), **_errors(404)},
            },
            "delete": {
                "summary": "Delete a job that is not running",
                "responses": {"204": {"description": "Deleted"}, **_errors(404, 409)},
            },
        },
        "/v1/jobs/{job_id}/replay": {
            "parameters": [_JOB_ID],
            "post": {
                "summary": "Run a dead or cancelled job again (same id, attempts reset)",
                "responses": {"200": _json(_JOB, "The job, pending"), **_errors(404, 409)},
            },
        },
        "/v1/jobs/{job_id}/cancel": {
            "parameters": [_JOB_ID],
            "post": {
                "summary": "Cancel a job that has not finished",
                "responses": {"200": _json(_JOB, "The job as it now is"), **_errors(404)},
            },
        },
        "/v1/queues": {
            "get": {
                "summary": "Every queue with its stats",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["queues"],
                            "properties": {"queues": {"type": "array", "items": _STATS}},
                        },
                        "Queues",
                    ),
                    **_errors(),
                },
            }
        },
        "/v1/queues/{name}": {
            "parameters": [_QUEUE_NAME],
            "get": {
                "summary": "One queue's stats",
                "responses": {"200": _json(_STATS, "Stats"), **_errors(422)},
            },
        },
        "/v1/queues/{name}/pause": {
            "parameters": [_QUEUE_NAME],
            "post": {
                "summary": "Stop workers claiming from the queue",
                "responses": {"200": _json(_STATS, "Stats, paused"), **_errors(422)},
            },
        },
        "/v1/queues/{name}/resume": {
            "parameters": [_QUEUE_NAME],
            "post": {
                "summary": "Let workers claim from the queue again",
                "responses": {"200": _json(_STATS, "Stats"), **_errors(422)},
            },
        },
        "/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1"}},
            }
        },
    },
}

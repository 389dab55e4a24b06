"""The dashboard's views: HTML pages over a `Queue`, rendered by Jinja2 templates (autoescaped).

Pages: queues overview (counts, a sparkline of the last hour's finished jobs, health, oldest
ready job, paused; a usage panel per queue with limits), one queue's charts of its activity by
minute (jobs per minute by outcome; wait and run times; depth) over 1, 6 or 24 hours, jobs by
queue, status, type, batch, error text and creation time with paging, or by id, with actions on
the selected jobs or on every job a filter matches (jobs_page.py); one job's detail (with its
batch's counts); the running workers; the schedules they fire. Actions (replay, cancel, delete,
run now, pause, resume, replay every dead job of a queue, drain a worker) are POSTed forms
carrying the session's CSRF token; their outcome comes back as a flash message kept in the
session, never in the URL.
`static/dashboard.js` refreshes each page's `data-refresh` fragment when `/dashboard/events`
(live.py) says it changed, or every few seconds while that stream is down.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jinja2
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ..errors import BackendUnavailableError, JobNotFoundError, JobRunningError, QueueKitError
from ..job import Job, JobStatus
from ..queue import RUNNABLE, Queue
from ..registry import WorkerNotFoundError, drain_worker, list_schedules, list_workers
from ..validation import NAME_PATTERN, check_name
from .auth import Auth, TooManyFailures
from .charts import depth_chart, jobs_chart, sparkline, times_chart
from .guards import read_body
from .jobs_page import act, changed, matching_jobs, search_query
from .live import dashboard_route
from .sessions import csrf_token, csrf_valid, flash, session_of, take_flash
from .times import ago, duration, moment, ran, utc
from .workflow_pages import relations, workflow_fragment, workflow_page

PREFIX = "/dashboard"
LOGIN_PATH = f"{PREFIX}/login"
PAGE_SIZE = 25
MAX_FORM_BYTES = 64 * 1024
STATUS_COLUMNS = ("waiting", "pending", "running", "completed", "failed", "dead", "cancelled")
TEMPLATES = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
)
STATIC_DIR = Path(__file__).parent / "static"
CHART_SPANS = {"1h": 60, "6h": 360, "24h": 1440}
"""The windows a queue's charts offer, in minutes."""
SHORT_JSON = 80
"""Characters of a payload shown in a list of jobs."""

View = Callable[[Request], Awaitable[Response]]


class Forbidden(Exception):
    """A form without this session's CSRF token."""


class Dashboard:
    """The dashboard's routes for one app."""

    def __init__(self, queue: Queue, auth: Auth) -> None:
        self.queue = queue
        self.auth = auth

    # Plumbing

    def base(self, request: Request) -> str:
        return str(request.scope.get("root_path", "")) + PREFIX

    def render(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> Response:
        """A page (a name without `_`) shows and uses up the flash message; a fragment does not."""
        page = not template.startswith("_")
        return TEMPLATES.TemplateResponse(
            request,
            template,
            {
                "base": self.base(request),
                "csrf": csrf_token(request),
                "logged_in": self.auth.logged_in(session_of(request)),
                "flash": take_flash(request) if page else None,
                **context,
            },
            status_code=status,
        )

    def message(self, request: Request, title: str, text: str, status: int) -> Response:
        return self.render(request, "message.html", status, title=title, text=text)

    async def form(self, request: Request) -> dict[str, str]:
        """The POSTed form, once its CSRF token is this session's."""
        return {key: values[0] for key, values in (await self.form_lists(request)).items()}

    async def form_lists(self, request: Request) -> dict[str, list[str]]:
        """The POSTed form with every value of each field, once its CSRF token is this
        session's."""
        body = await read_body(request, MAX_FORM_BYTES)
        fields = parse_qs(body.decode("utf-8", "replace"))
        if not csrf_valid(request, (fields.get("csrf") or [""])[0]):
            raise Forbidden("missing or invalid CSRF token: reload the page and try again")
        return fields

    def back(self, request: Request, path: str, message: str) -> Response:
        flash(request, message)
        return RedirectResponse(f"{self.base(request)}{path}", status_code=303)

    def view(self, handler: View) -> View:
        """Errors become pages with their status."""

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except Forbidden as exc:
                return self.message(request, "Forbidden", str(exc), 403)
            except HTTPException as exc:
                return self.message(request, "Refused", exc.detail, exc.status_code)
            except (JobNotFoundError, WorkerNotFoundError) as exc:
                return self.message(request, "Not found", str(exc), 404)
            except BackendUnavailableError as exc:
                return self.message(request, "Backend unavailable", str(exc), 503)
            except QueueKitError as exc:
                return self.message(request, "Invalid request", str(exc), 422)

        return run

    # Overview

    async def queue_rows(self) -> list[dict[str, Any]]:
        rows = []
        now = datetime.now(UTC)
        for name in await self.queue.list_queues():
            stats = await self.queue.stats(name)
            age = stats.oldest_ready_age
            rows.append(
                {
                    "stats": stats,
                    "counts": {status: getattr(stats, status) for status in STATUS_COLUMNS},
                    "spark": sparkline(await self.queue.activity(name, minutes=60), now),
                    "health": "ok"
                    if stats.health >= 80
                    else "warn"
                    if stats.health >= 50
                    else "bad",
                    "age": "—" if age is None else f"{age:.0f} s",
                }
            )
        return rows

    async def limit_panels(self) -> list[dict[str, Any]]:
        """Each limited queue's limits and usage, by queue name."""
        limited = sorted(await self.queue.limits())
        return [{"queue": name, "usage": await self.queue.limit_usage(name)} for name in limited]

    async def overview_context(self) -> dict[str, Any]:
        return {"rows": await self.queue_rows(), "panels": await self.limit_panels()}

    async def overview(self, request: Request) -> Response:
        context = await self.overview_context()
        return self.render(request, "queues.html", title="Queues", **context)

    async def overview_fragment(self, request: Request) -> Response:
        return self.render(request, "_queues.html", **await self.overview_context())

    # One queue

    async def queue_context(self, request: Request) -> dict[str, Any]:
        name = check_name(request.path_params["name"])
        span = CHART_SPANS.get(request.query_params.get("span", ""), CHART_SPANS["1h"])
        minutes = await self.queue.activity(name, minutes=span)
        now = datetime.now(UTC)
        return {
            "stats": await self.queue.stats(name),
            "statuses": STATUS_COLUMNS,
            "spans": list(CHART_SPANS),
            "span": next(key for key, value in CHART_SPANS.items() if value == span),
            "charts": [
                jobs_chart(minutes, now, span),
                times_chart(minutes, now, span),
                depth_chart(minutes, now, span),
            ],
        }

    async def queue_page(self, request: Request) -> Response:
        context = await self.queue_context(request)
        title = f"Queue {context['stats'].queue}"
        return self.render(request, "queue.html", title=title, **context)

    async def queue_fragment(self, request: Request) -> Response:
        return self.render(request, "_queue.html", **await self.queue_context(request))

    # Jobs

    async def matching_jobs(self, request: Request) -> dict[str, Any]:
        return await matching_jobs(self.queue, request.query_params, PAGE_SIZE)

    async def jobs(self, request: Request) -> Response:
        return self.render(
            request,
            "jobs.html",
            title="Jobs",
            statuses=[status.value for status in JobStatus],
            query=request.url.query,
            **await self.matching_jobs(request),
        )

    async def jobs_fragment(self, request: Request) -> Response:
        return self.render(request, "_jobs.html", **await self.matching_jobs(request))

    async def _job(self, request: Request) -> Job:
        value: str = request.path_params["job_id"]
        if NAME_PATTERN.fullmatch(value) is None:
            raise JobNotFoundError(f"no job with id {value!r}")
        return await self.queue.get_job(value)

    def job_context(self, job: Job) -> dict[str, Any]:
        times = ("created_at", "scheduled_at", "expires_at", "started_at", "finished_at")
        fields = [
            ("queue", job.queue),
            ("type", job.type),
            ("attempts", f"{job.attempts} of {job.max_attempts}"),
            ("priority", str(job.priority)),
            ("unique key", job.unique_key or ""),
            ("debounce key", job.debounce_key or ""),
            ("limit key", job.limit_key or ""),
            ("worker", job.worker_id or ""),
            *((name.replace("_", " "), _when(getattr(job, name))) for name in times),
        ]
        return {
            "job": job,
            "fields": fields,
            "replayable": job.status in (JobStatus.DEAD, JobStatus.CANCELLED),
            "runnable": job.status in RUNNABLE and job.scheduled_at > datetime.now(UTC),
            "payload": _pretty(job.payload),
            "result": _pretty(job.result) if job.status == JobStatus.COMPLETED else None,
            "output": None if job.output is None else _pretty(job.output),
            "headers": _pretty(job.headers) if job.headers else None,
        }

    async def job(self, request: Request) -> Response:
        job = await self._job(request)
        context = {**self.job_context(job), **await relations(self.queue, job)}
        return self.render(request, "job.html", title=f"Job {job.id}", **context)

    async def job_fragment(self, request: Request) -> Response:
        job = await self._job(request)
        context = {**self.job_context(job), **await relations(self.queue, job)}
        return self.render(request, "_job.html", **context)

    # Actions

    async def job_action(self, request: Request) -> Response:
        await self.form(request)
        job = await self._job(request)
        action = request.path_params["action"]
        if action == "replay":
            status = (await self.queue.replay(job.id)).status
            done = "replayed" if status == JobStatus.PENDING else f"not replayed: it is {status}"
        elif action == "cancel":
            done = f"now {(await self.queue.cancel(job.id)).status}"
        elif action == "run-now":
            after = await self.queue.run_now(job.id)
            done = "due now" if changed(action, job, after) else f"left as it was ({after.status})"
        elif action == "delete":
            try:
                await self.queue.delete_job(job.id)
            except JobRunningError:
                done = "not deleted: the job is running (cancel it first)"
            else:
                return self.back(request, "/jobs", f"job {job.id} deleted")
        else:
            return self.message(request, "Not found", "No such action.", 404)
        return self.back(request, f"/jobs/{job.id}", f"job {job.id} {done}")

    async def jobs_action(self, request: Request) -> Response:
        """An action on the jobs selected on the jobs page, or on every job its filter matches."""
        fields = await self.form_lists(request)
        done = await act(self.queue, request.url.path.rsplit("/", 1)[-1], fields)
        return self.back(request, f"/jobs?{search_query(fields)}", done)

    async def queue_action(self, request: Request) -> Response:
        await self.form(request)
        name = check_name(request.path_params["name"])
        action = request.path_params["action"]
        if action == "pause":
            await self.queue.pause(name)
            done = f"queue {name} paused"
        elif action == "resume":
            await self.queue.resume(name)
            done = f"queue {name} resumed"
        elif action == "replay-dead":
            count = await self.queue.replay_all(queue=name, status=JobStatus.DEAD)
            done = f"replayed {count} dead jobs of queue {name}"
        else:
            return self.message(request, "Not found", "No such action.", 404)
        return self.back(request, "/", done)

    # Workers

    async def workers_context(self) -> dict[str, Any]:
        return {"workers": await list_workers(self.queue.backend)}

    async def workers(self, request: Request) -> Response:
        context = await self.workers_context()
        return self.render(request, "workers.html", title="Workers", **context)

    async def workers_fragment(self, request: Request) -> Response:
        return self.render(request, "_workers.html", **await self.workers_context())

    # Schedules

    async def schedules_context(self) -> dict[str, Any]:
        return {"schedules": await list_schedules(self.queue.backend)}

    async def schedules(self, request: Request) -> Response:
        context = await self.schedules_context()
        return self.render(request, "schedules.html", title="Schedules", **context)

    async def schedules_fragment(self, request: Request) -> Response:
        return self.render(request, "_schedules.html", **await self.schedules_context())

    async def drain(self, request: Request) -> Response:
        await self.form(request)
        worker_id = request.path_params["worker_id"]
        await drain_worker(self.queue.backend, worker_id)
        done = f"worker {worker_id} asked to drain: it finishes its running jobs, then exits"
        return self.back(request, "/workers", done)

    # Login

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            if self.auth.logged_in(session_of(request)):
                return RedirectResponse(f"{self.base(request)}/", status_code=303)
            return self.render(request, "login.html", title="Log in", error=None)
        fields = await self.form(request)
        try:
            right = self.auth.check_key(request, fields.get("key", ""))
        except TooManyFailures as exc:
            page = self.render(request, "login.html", 429, title="Log in", error=str(exc))
            page.headers.update(exc.headers)
            return page
        if not right:
            return self.render(request, "login.html", 401, title="Log in", error="Wrong key.")
        self.auth.log_in(request)
        return RedirectResponse(f"{self.base(request)}/", status_code=303)

    async def logout(self, request: Request) -> Response:
        await self.form(request)
        self.auth.log_out(request)
        return RedirectResponse(self.base(request) + "/login", status_code=303)

    # Routing

    def routes(self) -> list[BaseRoute]:
        """The routes behind the authentication check."""
        p, v = PREFIX, self.view

        async def home(request: Request) -> Response:
            return RedirectResponse(f"{self.base(request)}/", status_code=307)

        return [
            Route("/", home, methods=["GET"]),
            Route(p, home, methods=["GET"]),
            Route(f"{p}/", v(self.overview), methods=["GET"]),
            Route(f"{p}/fragments/queues", v(self.overview_fragment), methods=["GET"]),
            Route(f"{p}/fragments/jobs", v(self.jobs_fragment), methods=["GET"]),
            Route(f"{p}/fragments/jobs/{{job_id}}", v(self.job_fragment), methods=["GET"]),
            Route(f"{p}/jobs", v(self.jobs), methods=["GET"]),
            Route(f"{p}/jobs/selected", v(self.jobs_action), methods=["POST"]),
            Route(f"{p}/jobs/matching", v(self.jobs_action), methods=["POST"]),
            Route(f"{p}/jobs/{{job_id}}", v(self.job), methods=["GET"]),
            Route(f"{p}/jobs/{{job_id}}/{{action}}", v(self.job_action), methods=["POST"]),
            Route(f"{p}/queues/{{name}}", v(self.queue_page), methods=["GET"]),
            Route(f"{p}/fragments/queues/{{name}}", v(self.queue_fragment), methods=["GET"]),
            Route(f"{p}/queues/{{name}}/{{action}}", v(self.queue_action), methods=["POST"]),
            Route(f"{p}/workers", v(self.workers), methods=["GET"]),
            Route(f"{p}/fragments/workers", v(self.workers_fragment), methods=["GET"]),
            Route(f"{p}/workers/{{worker_id}}/drain", v(self.drain), methods=["POST"]),
            Route(f"{p}/schedules", v(self.schedules), methods=["GET"]),
            Route(f"{p}/fragments/schedules", v(self.schedules_fragment), methods=["GET"]),
            Route(
                f"{p}/workflows/{{workflow_id}}", v(partial(workflow_page, self)), methods=["GET"]
            ),
            Route(
                f"{p}/fragments/workflows/{{workflow_id}}",
                v(partial(workflow_fragment, self)),
                methods=["GET"],
            ),
            dashboard_route(self.queue, f"{p}/events"),
        ]

    def public_routes(self) -> list[BaseRoute]:
        """The login page, logout and the static files: reachable before logging in."""
        routes: list[BaseRoute] = [
            Route(f"{PREFIX}/logout", self.view(self.logout), methods=["POST"]),
            Mount(f"{PREFIX}/static", StaticFiles(directory=STATIC_DIR)),
        ]
        if self.auth.api_key is not None:
            routes.append(Route(LOGIN_PATH, self.view(self.login), methods=["GET", "POST"]))
        return routes


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= SHORT_JSON else text[: SHORT_JSON - 1] + "…"


def _time(value: datetime | None) -> str:
    return "" if value is None else value.isoformat()


def _when(value: datetime | None) -> str:
    """A job's time in its detail table: empty when it has none."""
    return "" if value is None else moment(value)


TEMPLATES.env.filters["short_json"] = _short
TEMPLATES.env.filters["time"] = _time
TEMPLATES.env.filters["moment"] = moment
TEMPLATES.env.filters["utc"] = utc
TEMPLATES.env.filters["ago"] = ago
TEMPLATES.env.filters["ran"] = ran
TEMPLATES.env.filters["duration"] = duration

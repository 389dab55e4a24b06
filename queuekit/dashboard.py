"""The web dashboard: HTML pages over a `Queue`, served by `queuekit.api.create_app` at /dashboard/.

Pages: queues overview (counts, throughput sparkline, health, oldest ready job, paused), jobs by
status with paging and search by id or type, one job's detail; actions replay, cancel, delete,
pause/resume, replay every dead job of a queue. No build step, no CDN: the page is rendered here
with `html.escape` on every value, and `dashboard/dashboard.js` (shipped in the package) refreshes
fragments every few seconds.

Security:
- Every state change is a POST carrying a CSRF token: a random nonce signed with the app's secret
  (HMAC-SHA256), sent both as an HttpOnly SameSite=Strict cookie and a hidden form field, checked
  in constant time (double submit + signature). A cross-origin `Origin` header is refused too.
- With an `api_key`, a browser logs in once at /dashboard/login; the session cookie (HttpOnly,
  SameSite=Strict) holds an HMAC of the key, never the key. `Authorization: Bearer <key>` works too.
- `authenticate(request) -> bool` (sync or async) lets your own auth admit a request instead.
- Responses carry a strict Content-Security-Policy (no inline script).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import inspect
import itertools
import json
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from .errors import BackendUnavailableError, JobNotFoundError, QueueKitError
from .job import Job, JobStatus
from .queue import Queue
from .stats import QueueStats
from .validation import NAME_PATTERN, check_name

Authenticate = Callable[[Request], bool | Awaitable[bool]]

PREFIX = "/dashboard"
STATIC_DIR = Path(__file__).parent / "dashboard"
STATIC_FILES = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
CSRF_COOKIE = "queuekit_csrf"
SESSION_COOKIE = "queuekit_session"
PAGE_SIZE = 25
MAX_FORM_BYTES = 64 * 1024
SAMPLE_EVERY = 5.0
"""Seconds between two throughput samples of one queue."""
SAMPLE_WINDOW = 600.0
"""The sparkline shows the last ten minutes."""
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


class _Forbidden(Exception):
    pass


class Throughput:
    """Finished-job counts per queue sampled over time, kept in memory for the sparkline."""

    def __init__(self) -> None:
        self.samples: dict[str, deque[tuple[float, int]]] = {}

    def record(self, stats: QueueStats, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        samples = self.samples.setdefault(stats.queue, deque())
        if samples and now - samples[-1][0] < SAMPLE_EVERY:
            return
        samples.append((now, stats.completed + stats.dead))
        while samples and now - samples[0][0] > SAMPLE_WINDOW:
            samples.popleft()

    def rates(self, queue: str) -> list[float]:
        """Jobs finished per second between consecutive samples (never negative)."""
        points = list(self.samples.get(queue, ()))
        return [
            max(0.0, (b[1] - a[1]) / (b[0] - a[0]))
            for a, b in itertools.pairwise(points)
            if b[0] > a[0]
        ]

    def sparkline(self, queue: str, width: int = 120, height: int = 24) -> str:
        rates = self.rates(queue)
        if len(rates) < 2:
            return '<span class="muted">collecting…</span>'
        top = max(rates) or 1.0
        step = width / (len(rates) - 1)
        points = " ".join(
            f"{i * step:.1f},{height - 2 - (r / top) * (height - 4):.1f}"
            for i, r in enumerate(rates)
        )
        label = f"{rates[-1] * 60:.0f} jobs/min now, peak {top * 60:.0f}/min"
        return (
            f'<svg class="spark" width="{width}" height="{height}" role="img" '
            f'aria-label="{esc(label)}"><title>{esc(label)}</title>'
            f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" '
            f'points="{points}"/></svg>'
        )


class Dashboard:
    """The dashboard's routes and state (secret, throughput samples) for one app."""

    def __init__(
        self,
        queue: Queue,
        *,
        api_key: str | None = None,
        authenticate: Authenticate | None = None,
        secret: bytes | None = None,
    ) -> None:
        self.queue = queue
        self.api_key = api_key
        self.authenticate = authenticate
        self.secret = secret if secret is not None else secrets.token_bytes(32)
        self.throughput = Throughput()

    # Authentication and CSRF

    def _session_value(self) -> str:
        assert self.api_key is not None
        key_hash = hashlib.sha256(self.api_key.encode()).digest()
        return hmac.new(self.secret, b"session:" + key_hash, hashlib.sha256).hexdigest()

    async def _allowed(self, request: Request) -> bool:
        if self.authenticate is not None:
            verdict = self.authenticate(request)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if verdict:
                return True
        if self.api_key is None:
            return self.authenticate is None
        header = request.headers.get("authorization", "").encode()
        if hmac.compare_digest(header, f"Bearer {self.api_key}".encode()):
            return True
        cookie = request.cookies.get(SESSION_COOKIE, "").encode()
        return hmac.compare_digest(cookie, self._session_value().encode())

    def _sign(self, nonce: str) -> str:
        return hmac.new(self.secret, b"csrf:" + nonce.encode(), hashlib.sha256).hexdigest()

    def _csrf_token(self, request: Request) -> tuple[str, bool]:
        """The request's valid CSRF cookie value, or a new one (and True: set the cookie)."""
        current = request.cookies.get(CSRF_COOKIE, "")
        if self._token_valid(current):
            return current, False
        nonce = secrets.token_urlsafe(24)
        return f"{nonce}.{self._sign(nonce)}", True

    def _token_valid(self, token: str) -> bool:
        nonce, _, signature = token.partition(".")
        return bool(nonce) and hmac.compare_digest(signature.encode(), self._sign(nonce).encode())

    async def _form(self, request: Request) -> dict[str, str]:
        """The POSTed form, after the CSRF and same-origin checks."""
        origin = request.headers.get("origin")
        host = request.headers.get("host", "")
        if origin not in (None, "null") and urlsplit(origin).netloc != host:
            raise _Forbidden("cross-origin request refused")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise _Forbidden("form too large")
        fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        given = fields.get("csrf", "").encode()
        cookie = request.cookies.get(CSRF_COOKIE, "")
        if not (hmac.compare_digest(given, cookie.encode()) and self._token_valid(cookie)):
            raise _Forbidden("missing or invalid CSRF token: reload the page and try again")
        return fields

    # Plumbing

    def base(self, request: Request) -> str:
        return str(request.scope.get("root_path", "")) + PREFIX

    def _page(self, request: Request, title: str, body: str, status: int = 200) -> Response:
        token, fresh = self._csrf_token(request)
        base = self.base(request)
        message = request.query_params.get("msg")
        flash = f'<p class="flash" role="status">{esc(message)}</p>' if message else ""
        logout = (
            self._button(f"{base}/logout", "Log out")
            if self.api_key is not None and SESSION_COOKIE in request.cookies
            else ""
        )
        document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} · queuekit</title>
<link rel="stylesheet" href="{esc(base)}/static/dashboard.css">
<script src="{esc(base)}/static/dashboard.js" defer></script>
</head><body>
<header><a class="brand" href="{esc(base)}/">queuekit</a>
<nav><a href="{esc(base)}/">Queues</a> <a href="{esc(base)}/jobs">Jobs</a>{logout}</nav></header>
<main><h1>{esc(title)}</h1>{flash}{body}</main>
</body></html>""".replace("__CSRF__", esc(token))
        response = HTMLResponse(document, status_code=status)
        self._headers(request, response, token if fresh else None)
        return response

    def _fragment(self, request: Request, body: str) -> Response:
        token, fresh = self._csrf_token(request)
        response = HTMLResponse(body.replace("__CSRF__", esc(token)))
        self._headers(request, response, token if fresh else None)
        return response

    def _headers(self, request: Request, response: Response, new_token: str | None) -> None:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"
        if new_token is not None:
            response.set_cookie(
                CSRF_COOKIE,
                new_token,
                path=self.base(request),
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )

    def _back(self, request: Request, path: str, message: str) -> Response:
        return RedirectResponse(
            f"{self.base(request)}{path}?{urlencode({'msg': message})}", status_code=303
        )

    def _button(self, action: str, label: str, css: str = "", confirm: str = "") -> str:
        data = f' data-confirm="{esc(confirm)}"' if confirm else ""
        return (
            f'<form method="post" action="{esc(action)}" class="inline"{data}>'
            f'<input type="hidden" name="csrf" value="__CSRF__">'
            f'<button type="submit" class="{esc(css)}">{esc(label)}</button></form>'
        )

    # Overview

    async def queues_fragment(self, request: Request) -> str:
        base = self.base(request)
        names = await self.queue.list_queues()
        rows = []
        for name in names:
            stats = await self.queue.stats(name)
            self.throughput.record(stats)
            q = esc(name)
            age = "—" if stats.oldest_ready_age is None else f"{stats.oldest_ready_age:.0f} s"
            health_class = "ok" if stats.health >= 80 else "warn" if stats.health >= 50 else "bad"
            pause = (
                self._button(f"{base}/queues/{name}/resume", "Resume")
                if stats.paused
                else self._button(f"{base}/queues/{name}/pause", "Pause")
            )
            replay_dead = (
                self._button(
                    f"{base}/queues/{name}/replay-dead",
                    f"Replay {stats.dead} dead",
                    confirm=f"Replay every dead job of {name}?",
                )
                if stats.dead
                else ""
            )
            counts = "".join(
                f'<td class="num"><a href="{esc(base)}/jobs?'
                f'{esc(urlencode({"queue": name, "status": status}))}" '
                f'data-count="{status}">{getattr(stats, status)}</a></td>'
                for status in ("pending", "running", "completed", "failed", "dead", "cancelled")
            )
            rows.append(
                f'<tr data-queue="{q}"><th scope="row">{q}</th>{counts}'
                f'<td class="num">{stats.ready}</td>'
                f"<td>{self.throughput.sparkline(name)}</td>"
                f'<td class="num {health_class}">{stats.health}</td><td class="num">{esc(age)}</td>'
                f'<td data-paused="{str(stats.paused).lower()}">'
                f"{'paused' if stats.paused else 'running'}</td>"
                f'<td class="actions">{pause}{replay_dead}</td></tr>'
            )
        if not rows:
            return '<p class="muted">No queues yet: enqueue a job.</p>'
        return (
            '<table class="queues"><thead><tr><th>queue</th><th>pending</th><th>running</th>'
            "<th>completed</th><th>failed</th><th>dead</th><th>cancelled</th><th>ready</th>"
            "<th>throughput</th><th>health</th><th>oldest ready</th><th>state</th><th></th>"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )

    async def overview(self, request: Request) -> Response:
        fragment = await self.queues_fragment(request)
        url = f"{self.base(request)}/fragments/queues"
        body = f'<div data-refresh="{esc(url)}">{fragment}</div>'
        return self._page(request, "Queues", body)

    async def overview_fragment(self, request: Request) -> Response:
        return self._fragment(request, await self.queues_fragment(request))

    # Jobs

    async def jobs_fragment(self, request: Request) -> str:
        base = self.base(request)
        params = request.query_params
        queue = params.get("queue") or None
        status = params.get("status") or None
        type_filter = (params.get("type") or "").strip()
        wanted_id = (params.get("id") or "").strip()
        cursor = params.get("cursor") or None
        jobs: list[Job] = []
        next_cursor: str | None = None
        if wanted_id:
            try:
                if NAME_PATTERN.fullmatch(wanted_id) is None:
                    raise JobNotFoundError(wanted_id)
                jobs = [await self.queue.get_job(wanted_id)]
            except JobNotFoundError:
                jobs = []
        else:
            if queue is not None:
                check_name(queue)
            # The backends filter by queue and status; the type filter scans a few pages.
            for _ in range(10 if type_filter else 1):
                page = await self.queue.list_jobs(
                    queue=queue, status=status, limit=PAGE_SIZE, cursor=cursor
                )
                jobs += [j for j in page.jobs if not type_filter or j.type == type_filter]
                next_cursor = cursor = page.next_cursor
                if cursor is None or len(jobs) >= PAGE_SIZE:
                    break
        rows = "".join(
            f'<tr data-job="{esc(job.id)}"><td><a href="{esc(base)}/jobs/{esc(job.id)}">'
            f"<code>{esc(job.id)}</code></a></td><td>{esc(job.queue)}</td>"
            f'<td>{esc(job.type)}</td><td class="status {esc(job.status)}">{esc(job.status)}</td>'
            f'<td class="num">{job.attempts}/{job.max_attempts}</td>'
            f"<td>{esc(job.created_at.strftime('%Y-%m-%d %H:%M:%S'))}</td>"
            f'<td class="payload"><code>{esc(_short(job.payload))}</code></td></tr>'
            for job in jobs
        )
        if not rows:
            return '<p class="muted" data-empty>No jobs match.</p>'
        more = ""
        if next_cursor is not None:
            query = {k: v for k, v in params.items() if k != "cursor" and v}
            query["cursor"] = next_cursor
            href = f"{base}/jobs?{urlencode(query)}"
            more = f'<p><a class="next" href="{esc(href)}">Next page →</a></p>'
        return (
            '<table class="jobs"><thead><tr><th>id</th><th>queue</th><th>type</th><th>status</th>'
            "<th>attempts</th><th>created (UTC)</th><th>payload</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>{more}"
        )

    async def jobs(self, request: Request) -> Response:
        params = request.query_params
        base = self.base(request)
        options = "".join(
            f'<option value="{s}"{" selected" if params.get("status") == s else ""}>{s}</option>'
            for s in ["", *(status.value for status in JobStatus)]
        )
        search = (
            f'<form method="get" action="{esc(base)}/jobs" class="search">'
            f'<label>queue <input name="queue" value="{esc(params.get("queue", ""))}"></label> '
            f'<label>status <select name="status">{options}</select></label> '
            f'<label>type <input name="type" value="{esc(params.get("type", ""))}"></label> '
            f'<label>id <input name="id" value="{esc(params.get("id", ""))}"></label> '
            '<button type="submit">Search</button></form>'
        )
        fragment = await self.jobs_fragment(request)
        url = f"{base}/fragments/jobs?{request.url.query}"
        return self._page(
            request, "Jobs", f'{search}<div data-refresh="{esc(url)}">{fragment}</div>'
        )

    async def jobs_list_fragment(self, request: Request) -> Response:
        return self._fragment(request, await self.jobs_fragment(request))

    async def job_fragment(self, request: Request, job: Job) -> str:
        base = self.base(request)
        target = f"{base}/jobs/{job.id}"
        actions = []
        if job.status in (JobStatus.DEAD, JobStatus.CANCELLED):
            actions.append(self._button(f"{target}/replay", "Replay", "primary"))
        if not job.status.is_terminal:
            actions.append(self._button(f"{target}/cancel", "Cancel"))
        if job.status != JobStatus.RUNNING:
            actions.append(
                self._button(f"{target}/delete", "Delete", "danger", confirm="Delete this job?")
            )
        fields = [
            (
                "status",
                f'<span class="status {esc(job.status)}" data-status>{esc(job.status)}</span>',
            ),
            ("queue", esc(job.queue)),
            ("type", esc(job.type)),
            ("attempts", f"{job.attempts} of {job.max_attempts}"),
            ("priority", str(job.priority)),
            ("unique key", esc(job.unique_key)),
            ("worker", esc(job.worker_id)),
        ]
        for name in ("created_at", "scheduled_at", "started_at", "finished_at"):
            value = getattr(job, name)
            fields.append((name.replace("_", " "), esc(value and value.isoformat())))
        table = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in fields)
        error = (
            f'<h2>Last error</h2><pre class="error" data-error>{esc(job.last_error)}</pre>'
            if job.last_error
            else ""
        )
        result = (
            f"<h2>Result</h2><pre data-result>{esc(_pretty(job.result))}</pre>"
            if job.status == JobStatus.COMPLETED
            else ""
        )
        headers = (
            f"<h2>Headers</h2><pre data-headers>{esc(_pretty(job.headers))}</pre>"
            if job.headers
            else ""
        )
        return (
            f'<div class="actions">{"".join(actions)}</div>'
            f'<table class="detail">{table}</table>{headers}'
            f"<h2>Payload</h2><pre data-payload>{esc(_pretty(job.payload))}</pre>{error}{result}"
        )

    async def job(self, request: Request) -> Response:
        job = await self._job(request)
        fragment = await self.job_fragment(request, job)
        url = f"{self.base(request)}/fragments/jobs/{job.id}"
        body = f'<div data-refresh="{esc(url)}">{fragment}</div>'
        return self._page(request, f"Job {job.id}", body)

    async def job_detail_fragment(self, request: Request) -> Response:
        return self._fragment(request, await self.job_fragment(request, await self._job(request)))

    async def _job(self, request: Request) -> Job:
        value: str = request.path_params["job_id"]
        if NAME_PATTERN.fullmatch(value) is None:
            raise JobNotFoundError(f"no job with id {value!r}")
        return await self.queue.get_job(value)

    # Actions

    async def job_action(self, request: Request) -> Response:
        await self._form(request)
        job = await self._job(request)
        action = request.path_params["action"]
        where = f"/jobs/{job.id}"
        if action == "replay":
            done = await self.queue.replay(job.id)
            ok = done.status == JobStatus.PENDING
            message = "replayed" if ok else f"not replayed: the job is {done.status}"
        elif action == "cancel":
            message = f"now {(await self.queue.cancel(job.id)).status}"
        elif action == "delete":
            if await self.queue.delete_job(job.id):
                return self._back(request, "/jobs", f"job {job.id} deleted")
            message = "not deleted: the job is running (cancel it first)"
        else:
            return self._page(request, "Not found", "<p>No such action.</p>", 404)
        return self._back(request, where, f"job {job.id} {message}")

    async def queue_action(self, request: Request) -> Response:
        await self._form(request)
        name = check_name(request.path_params["name"])
        action = request.path_params["action"]
        if action == "pause":
            await self.queue.pause(name)
            message = f"queue {name} paused"
        elif action == "resume":
            await self.queue.resume(name)
            message = f"queue {name} resumed"
        elif action == "replay-dead":
            replayed, cursor = 0, None
            while True:
                page = await self.queue.list_jobs(
                    queue=name, status=JobStatus.DEAD, limit=500, cursor=cursor
                )
                for job in page.jobs:
                    replayed += (await self.queue.replay(job.id)).status == JobStatus.PENDING
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            message = f"replayed {replayed} dead jobs of queue {name}"
        else:
            return self._page(request, "Not found", "<p>No such action.</p>", 404)
        return self._back(request, "/", message)

    # Login

    async def login(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                fields = await self._form(request)
            except _Forbidden as exc:
                return self._page(request, "Forbidden", f"<p>{esc(exc)}</p>", 403)
            key = fields.get("key", "").encode()
            if self.api_key is not None and hmac.compare_digest(key, self.api_key.encode()):
                response = RedirectResponse(f"{self.base(request)}/", status_code=303)
                response.set_cookie(
                    SESSION_COOKIE,
                    self._session_value(),
                    path=self.base(request),
                    httponly=True,
                    samesite="strict",
                    secure=request.url.scheme == "https",
                )
                return response
            return self._login_page(request, "Wrong key.", 401)
        return self._login_page(request, "", 200)

    def _login_page(self, request: Request, error: str, status: int) -> Response:
        note = f'<p class="flash bad">{esc(error)}</p>' if error else ""
        body = (
            f'{note}<form method="post" action="{esc(self.base(request))}/login" class="login">'
            '<input type="hidden" name="csrf" value="__CSRF__">'
            '<label>API key <input type="password" name="key" autocomplete="current-password" '
            'autofocus></label> <button type="submit" class="primary">Log in</button></form>'
        )
        return self._page(request, "Log in", body, status)

    async def logout(self, request: Request) -> Response:
        try:
            await self._form(request)
        except _Forbidden as exc:
            return self._page(request, "Forbidden", f"<p>{esc(exc)}</p>", 403)
        response = RedirectResponse(f"{self.base(request)}/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=self.base(request))
        return response

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_FILES:
            return Response("not found", status_code=404)
        response = Response((STATIC_DIR / name).read_bytes(), media_type=STATIC_FILES[name])
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "max-age=300"
        return response

    # Routing

    def guard(self, handler: Callable[[Request], Awaitable[Response]]) -> Any:
        async def run(request: Request) -> Response:
            if not await self._allowed(request):
                if self.api_key is not None and request.method == "GET":
                    if "/fragments/" in request.url.path:
                        return Response("log in again", status_code=401)
                    return RedirectResponse(f"{self.base(request)}/login", status_code=303)
                return self._page(request, "Forbidden", "<p>Not allowed.</p>", 403)
            try:
                return await handler(request)
            except _Forbidden as exc:
                return self._page(request, "Forbidden", f"<p>{esc(exc)}</p>", 403)
            except JobNotFoundError as exc:
                return self._page(request, "Not found", f"<p>{esc(exc)}</p>", 404)
            except BackendUnavailableError as exc:
                return self._page(request, "Backend unavailable", f"<p>{esc(exc)}</p>", 503)
            except QueueKitError as exc:
                return self._page(request, "Invalid request", f"<p>{esc(exc)}</p>", 422)

        return run

    def routes(self) -> list[Route]:
        g = self.guard
        p = PREFIX

        async def redirect(request: Request) -> Response:
            return RedirectResponse(f"{self.base(request)}/", status_code=307)

        return [
            Route(p, redirect, methods=["GET"]),
            Route(f"{p}/", g(self.overview), methods=["GET"]),
            Route(f"{p}/login", self.login, methods=["GET", "POST"]),
            Route(f"{p}/logout", self.logout, methods=["POST"]),
            Route(f"{p}/static/{{name}}", self.static, methods=["GET"]),
            Route(f"{p}/fragments/queues", g(self.overview_fragment), methods=["GET"]),
            Route(f"{p}/fragments/jobs", g(self.jobs_list_fragment), methods=["GET"]),
            Route(f"{p}/fragments/jobs/{{job_id}}", g(self.job_detail_fragment), methods=["GET"]),
            Route(f"{p}/jobs", g(self.jobs), methods=["GET"]),
            Route(f"{p}/jobs/{{job_id}}", g(self.job), methods=["GET"]),
            Route(f"{p}/jobs/{{job_id}}/{{action}}", g(self.job_action), methods=["POST"]),
            Route(f"{p}/queues/{{name}}/{{action}}", g(self.queue_action), methods=["POST"]),
        ]


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = ["Authenticate", "Dashboard", "Throughput"]

"""The dashboard's workflow views: a job's parents and children and its batch's counts, and a
workflow's page, its jobs as an indented tree (a job with several parents sits under the
first, "also after" the others) with their states."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from ..batches import BATCH_HEADER
from ..errors import JobNotFoundError
from ..job import Job
from ..queue import Queue
from ..validation import NAME_PATTERN
from ..workflow_tree import MAX_TREE_JOBS, WorkflowTree, read_tree

if TYPE_CHECKING:
    from .dashboard import Dashboard

MAX_INDENT = 8
"""Tree levels indented; deeper jobs stay at this indent (their depth is written beside them),
so a long chain still fits a phone's width."""


MAX_RELATIONS = 100
"""Parents and children a job's page lists, each: a batch's callback has a parent per job of
the batch (up to 100,000), which the page counts and links to the batch's search instead."""


async def relations(queue: Queue, job: Job) -> dict[str, Any]:
    """A job's first parents (with their edges' on_failure) and children, with their types
    and states (one read of them all), how many more it has, and the batch it belongs to or is
    a callback of, with its counts by state, for its page."""
    edges = (job.parents or ())[:MAX_RELATIONS]
    children = (job.dependents or ())[:MAX_RELATIONS]
    found = {
        other.id: other
        for other in await queue.backend.get_jobs([edge.job_id for edge in edges] + list(children))
    }
    return {
        "parents": [
            _link(edge.job_id, found.get(edge.job_id), str(edge.on_failure)) for edge in edges
        ],
        "children": [_link(child, found.get(child)) for child in children],
        "more": {
            "Parents": len(job.parents or ()) - len(edges),
            "Children": len(job.dependents or ()) - len(children),
        },
        "batch": await _batch(queue, job),
    }


async def _batch(queue: Queue, job: Job) -> dict[str, Any] | None:
    """The batch of a job (`Job.batch_id`), or of a callback (its header), with its counts."""
    callback = job.headers.get(BATCH_HEADER)
    batch_id = callback or job.batch_id
    if batch_id is None:
        return None
    counts = await queue.batch_counts(batch_id)
    return {"id": batch_id, "callback": callback is not None, "counts": counts}


def _link(job_id: str, job: Job | None, on_failure: str | None = None) -> dict[str, Any]:
    """One parent or child as its page lists it; "deleted" if it is gone."""
    if job is None:
        return {"id": job_id, "type": "", "status": "deleted", "on_failure": on_failure}
    return {"id": job_id, "type": job.type, "status": str(job.status), "on_failure": on_failure}


async def _tree(dashboard: Dashboard, request: Request) -> dict[str, Any]:
    workflow_id: str = request.path_params["workflow_id"]
    if NAME_PATTERN.fullmatch(workflow_id) is None:
        raise JobNotFoundError(f"no workflow with id {workflow_id!r}")
    tree: WorkflowTree = await read_tree(dashboard.queue, workflow_id)
    if not tree.lines:
        raise JobNotFoundError(f"no workflow with id {workflow_id!r}")
    types = {line.job.id: line.job.type for line in tree.lines}
    counts: dict[str, int] = {}
    for line in tree.lines:
        counts[line.job.status] = counts.get(line.job.status, 0) + 1
    return {
        "workflow_id": workflow_id,
        "lines": tree.lines,
        "indent": lambda depth: min(depth, MAX_INDENT),
        "types": types,
        "counts": sorted(counts.items()),
        "truncated": tree.truncated,
        "max_jobs": MAX_TREE_JOBS,
    }


async def workflow_page(dashboard: Dashboard, request: Request) -> Response:
    context = await _tree(dashboard, request)
    title = f"Workflow {context['workflow_id']}"
    return dashboard.render(request, "workflow.html", title=title, **context)


async def workflow_fragment(dashboard: Dashboard, request: Request) -> Response:
    return dashboard.render(request, "_workflow.html", **await _tree(dashboard, request))


__all__ = ["relations", "workflow_fragment", "workflow_page"]

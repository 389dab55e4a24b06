"""A stored workflow as an indented tree: each job under its first parent in the workflow, for
the CLI and the dashboard (a DAG's other edges are listed beside the job as "also after")."""

from __future__ import annotations

from dataclasses import dataclass

from .job import Job, OnFailure
from .queue import Queue
from .search import MAX_PAGE_SIZE

MAX_TREE_JOBS = 2000
"""The most jobs of one workflow a tree shows (the oldest ones); the API pages through all."""


@dataclass(frozen=True, slots=True)
class TreeLine:
    """One job of the tree: how deep it is, the edge it hangs by, and its other parents."""

    job: Job
    depth: int
    on_failure: OnFailure | None
    """The policy of the edge to the parent it is shown under; None for a first job."""
    also_after: tuple[str, ...] = ()
    """Its other parents in the workflow (it is shown under the first)."""


@dataclass(frozen=True, slots=True)
class WorkflowTree:
    """A workflow's jobs as tree lines, in enqueue order under each parent."""

    workflow_id: str
    lines: list[TreeLine]
    truncated: bool
    """Whether the workflow has more than `MAX_TREE_JOBS` jobs (the tree shows the oldest)."""


async def read_tree(queue: Queue, workflow_id: str) -> WorkflowTree:
    """The jobs of the workflow `workflow_id` as a tree; no lines if it has none."""
    newest_first: list[Job] = []
    cursor: str | None = None
    while True:
        page = await queue.list_jobs(workflow_id=workflow_id, limit=MAX_PAGE_SIZE, cursor=cursor)
        newest_first.extend(page.jobs)
        cursor = page.next_cursor
        if cursor is None or len(newest_first) > MAX_TREE_JOBS:
            break
    truncated = len(newest_first) > MAX_TREE_JOBS
    oldest = list(reversed(newest_first))[:MAX_TREE_JOBS]
    # list_jobs leaves parents out: one more read gives every job's edges.
    jobs = await queue.backend.get_jobs([job.id for job in oldest])
    return WorkflowTree(workflow_id, tree_lines(jobs), truncated)


def tree_lines(jobs: list[Job]) -> list[TreeLine]:
    """`jobs` (in enqueue order, with `parents` read) as tree lines, depth first."""
    inside = {job.id for job in jobs}
    children: dict[str, list[tuple[Job, OnFailure, tuple[str, ...]]]] = {}
    roots: list[Job] = []
    for job in jobs:
        parents = [p for p in job.parents or () if p.job_id in inside]
        if not parents:
            roots.append(job)
            continue
        others = tuple(p.job_id for p in parents[1:])
        children.setdefault(parents[0].job_id, []).append((job, parents[0].on_failure, others))
    lines: list[TreeLine] = []
    stack: list[TreeLine] = [TreeLine(job, 0, None) for job in reversed(roots)]
    while stack:
        line = stack.pop()
        lines.append(line)
        below = children.get(line.job.id, [])
        stack.extend(
            TreeLine(child, line.depth + 1, policy, others)
            for child, policy, others in reversed(below)
        )
    return lines


__all__ = ["MAX_TREE_JOBS", "TreeLine", "WorkflowTree", "read_tree", "tree_lines"]

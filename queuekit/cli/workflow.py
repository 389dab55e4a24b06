"""`queuekit workflow ID`: a workflow's jobs as a tree; and the parents and dependents that
`queuekit jobs show` prints."""

from __future__ import annotations

import click

from ..job import Job
from ..queue import Queue
from ..serialize import job_dict
from ..workflow_tree import MAX_TREE_JOBS, WorkflowTree, read_tree
from .output import echo, print_json
from .shared import Failure, json_option, open_queue, run, url_option


@click.command()
@click.argument("workflow_id")
@url_option
@json_option
def workflow(workflow_id: str, url: str | None, as_json: bool) -> None:
    """A workflow's jobs as a tree, each under its first parent, with their states."""
    handle = open_queue(url)

    async def main() -> WorkflowTree:
        async with handle:
            return await read_tree(handle, workflow_id)

    tree = run(main)
    if not tree.lines:
        raise Failure(f"no workflow with id {workflow_id!r}")
    if as_json:
        print_json([job_dict(line.job) for line in tree.lines])
        return
    for line in tree.lines:
        indent = "  " * line.depth + ("└ " if line.depth else "")
        job = line.job
        text = f"{indent}{job.type}  {job.id}  {job.status}"
        if line.on_failure is not None and line.on_failure != "cancel":
            text += f"  (on failure: {line.on_failure})"
        if line.also_after:
            text += f"  also after {', '.join(line.also_after)}"
        echo(text)
    if tree.truncated:
        echo(f"(the first {MAX_TREE_JOBS} jobs; --json or the API list them all)")


MAX_RELATIONS = 100
"""Parents and dependents `jobs show` prints, each (a batch's callback has a parent per job of
the batch, up to 100,000); `--json` lists them all."""


async def relations(queue: Queue, job: Job) -> list[str]:
    """The lines of `jobs show` about `job`'s workflow, first parents and dependents, with
    their states (one read of them all), and how many more it has."""
    parents = (job.parents or ())[:MAX_RELATIONS]
    dependents = (job.dependents or ())[:MAX_RELATIONS]
    found = await queue.backend.get_jobs([p.job_id for p in parents] + list(dependents))
    status = {other.id: str(other.status) for other in found}
    lines = [f"workflow_id  {job.workflow_id}"] if job.workflow_id else []
    if parents:
        lines.append("parents")
        lines += [
            f"  {p.job_id}  {status.get(p.job_id, 'deleted')}  on failure: {p.on_failure}"
            for p in parents
        ]
        lines += _more(len(job.parents or ()) - len(parents))
    if dependents:
        lines.append("dependents")
        lines += [f"  {child}  {status.get(child, 'deleted')}" for child in dependents]
        lines += _more(len(job.dependents or ()) - len(dependents))
    return lines


def _more(count: int) -> list[str]:
    return [f"  and {count:,} more (--json lists them all)"] if count else []

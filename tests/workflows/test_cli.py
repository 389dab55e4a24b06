"""The CLI's side of workflows: `enqueue --after/--workflow-id`, `jobs show`, `workflow`, stats."""

from __future__ import annotations

from queuekit import Queue, chain, chord, new_job

from ..cli.test_cli import fails, ok, ok_json
from ..setups import BackendSetup


async def test_enqueue_after_and_show_the_edges(durable_setup: BackendSetup) -> None:
    url = durable_setup.url
    assert url is not None
    first = ok_json("enqueue", "fetch", "--workflow-id", "wf-1", url=url)
    second = ok_json("enqueue", "fetch", "--workflow-id", "wf-1", url=url)
    child = ok_json(
        "enqueue",
        "merge",
        "--after",
        first["id"],
        "--after",
        f"{second['id']}=run",
        "--workflow-id",
        "wf-1",
        url=url,
    )
    assert child["status"] == "waiting" and child["workflow_id"] == "wf-1"

    shown = ok_json("jobs", "show", child["id"], url=url)
    assert shown["parents"] == [
        {"id": first["id"], "on_failure": "cancel"},
        {"id": second["id"], "on_failure": "run"},
    ]
    assert ok_json("jobs", "show", first["id"], url=url)["dependents"] == [child["id"]]
    text = ok("jobs", "show", child["id"], url=url)
    assert "workflow_id  wf-1" in text
    assert f"  {second['id']}  pending  on failure: run" in text
    assert f"  {child['id']}  waiting" in ok("jobs", "show", first["id"], url=url)

    waiting = next(row for row in ok_json("stats", url=url) if row["queue"] == "default")
    assert (waiting["waiting"], waiting["pending"]) == (1, 2)
    assert "waiting" in ok("stats", url=url).splitlines()[0].split()

    assert "on_failure must be one of" in fails(
        "enqueue", "x", "--after", f"{first['id']}=later", url=url
    )
    assert "no job 'missing'" in fails("enqueue", "x", "--after", "missing", url=url)


async def test_workflow_prints_a_tree(durable_setup: BackendSetup) -> None:
    url = durable_setup.url
    assert url is not None
    a, b, c = new_job("fetch"), new_job("fetch"), new_job("parse")
    merge = new_job("merge", after=[b])
    async with Queue(durable_setup.make()) as queue:
        flow = chain(a, chord([b, c], merge)).with_id("tree-1")
        await queue.enqueue_many(flow)
    lines = ok("workflow", "tree-1", url=url).splitlines()
    assert lines == [
        f"fetch  {a.id}  pending",
        f"  └ fetch  {b.id}  waiting",
        f"    └ merge  {merge.id}  waiting  also after {c.id}",
        f"  └ parse  {c.id}  waiting",
    ]
    listed = ok_json("workflow", "tree-1", url=url)
    assert [job["id"] for job in listed] == [a.id, b.id, merge.id, c.id]
    assert "no workflow with id 'nope'" in fails("workflow", "nope", url=url)
